#include "store/sync_log.hpp"

#include "util/timestamp.hpp"

namespace isync::store {

sync_log::sync_log(statement_registry& statements)
    : upsert_state_success_(
          statements.make("INSERT INTO sync_state (app_id, tld, watermark_ms, watermark, last_success_at, "
                          "auth_failing) VALUES (?1, ?2, ?3, ?4, ?5, 0) "
                          "ON CONFLICT(app_id, tld) DO UPDATE SET "
                          "watermark_ms = MAX(COALESCE(watermark_ms, ?3), ?3), "
                          "watermark = CASE WHEN COALESCE(watermark_ms, ?3) > ?3 THEN watermark ELSE ?4 END, "
                          "last_success_at = ?5, auth_failing = 0")),
      upsert_state_failure_(
          statements.make("INSERT INTO sync_state (app_id, tld, last_error_at, last_error, auth_failing) "
                          "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(app_id, tld) DO UPDATE SET "
                          "last_error_at = ?3, last_error = ?4, auth_failing = ?5")),
      insert_run_(statements.make(
          "INSERT INTO sync_runs (app_id, tld, from_ms, to_ms, pages, incidents_seen, incidents_new, "
          "incidents_changed, drift_corrections, started_at, finished_at, status, error, from_at, to_at, kind) "
          "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")),
      select_watermark_(statements.make("SELECT watermark_ms FROM sync_state WHERE app_id = ? AND tld = ?")) {}

void sync_log::finish_slice(const slice_report& report, const upsert_counts& page, const std::string& now_text) {
    upsert_counts totals = report.counts;
    totals += page;
    if (report.moves_watermark) {
        upsert_state_success_.bind(1, report.pair.app_id);
        upsert_state_success_.bind(2, report.pair.tld);
        upsert_state_success_.bind(3, report.to_ms);
        upsert_state_success_.bind(4, util::format_iso8601_ms(report.to_ms));
        upsert_state_success_.bind(5, now_text);
        run(upsert_state_success_);
    }

    write_run(report, report.pages + 1, totals, now_text, nullptr);
}

void sync_log::record_failure(const slice_report& report, const std::string& error_text, const std::string& now_text,
                              bool auth_failure) {
    if (report.moves_watermark) {  // a resync's failure leaves the pair's own state alone
        upsert_state_failure_.bind(1, report.pair.app_id);
        upsert_state_failure_.bind(2, report.pair.tld);
        upsert_state_failure_.bind(3, now_text);
        upsert_state_failure_.bind(4, error_text);
        upsert_state_failure_.bind(5, auth_failure ? 1 : 0);
        run(upsert_state_failure_);
    }

    write_run(report, report.pages, report.counts, now_text, &error_text);
}

void sync_log::write_run(const slice_report& report, std::int64_t pages, const upsert_counts& totals,
                         const std::string& now_text, const std::string* error_text) {
    insert_run_.bind(1, report.pair.app_id);
    insert_run_.bind(2, report.pair.tld);
    insert_run_.bind(3, report.from_ms);
    insert_run_.bind(4, report.to_ms);
    insert_run_.bind(5, pages);
    insert_run_.bind(6, totals.seen);
    insert_run_.bind(7, totals.inserted);
    insert_run_.bind(8, totals.changed);
    insert_run_.bind(9, report.drift_corrections);
    insert_run_.bind(10, util::format_iso8601_ms(report.started_ms));
    insert_run_.bind(11, now_text);
    insert_run_.bind(12, error_text ? "failed" : "ok");
    if (error_text)
        insert_run_.bind(13, *error_text);
    else
        insert_run_.bind(13);
    insert_run_.bind(14, util::format_iso8601_ms(report.from_ms));
    insert_run_.bind(15, util::format_iso8601_ms(report.to_ms));
    insert_run_.bind(16, report.moves_watermark ? "poll" : "resync");
    run(insert_run_);
}

std::optional<std::int64_t> sync_log::watermark(const config::pair& pair) {
    select_watermark_.bind(1, pair.app_id);
    select_watermark_.bind(2, pair.tld);
    std::optional<std::int64_t> value;
    if (select_watermark_.executeStep() && !select_watermark_.getColumn(0).isNull())
        value = select_watermark_.getColumn(0).getInt64();
    select_watermark_.reset();
    return value;
}

}  // namespace isync::store
