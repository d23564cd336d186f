#include "store/incident_store.hpp"

#include "store/database.hpp"
#include "util/hash.hpp"
#include "util/timestamp.hpp"

#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace isync::store {
namespace {

// Text is bound without a copy (SQLITE_STATIC): every value bound here lives
// until the statement has run (see run()), and every run binds all of them anew.
void bind_optional(SQLite::Statement& st, int index, const std::optional<std::string>& v) {
    if (v) st.bindNoCopy(index, *v);
    else st.bind(index);
}

void bind_optional(SQLite::Statement& st, int index, const std::optional<bool>& v) {
    if (v) st.bind(index, *v ? 1 : 0);
    else st.bind(index);
}

void bind_optional(SQLite::Statement& st, int index, const std::optional<double>& v) {
    if (v) st.bind(index, *v);
    else st.bind(index);
}

// Runs a write statement once and readies it for the next use.
void run(SQLite::Statement& st) {
    st.exec();
    st.reset();
}

void add_optional(util::content_hasher& h, const std::optional<std::string>& v) {
    if (v) h.add(*v);
    else h.add_separator();
}

void add_optional(util::content_hasher& h, const std::optional<bool>& v) {
    h.add(std::int64_t{v ? (*v ? 1 : 0) : 2});
}

void add_optional(util::content_hasher& h, const std::optional<double>& v) {
    if (v) h.add(std::string_view(reinterpret_cast<const char*>(&*v), sizeof *v));
    else h.add_separator();
}

constexpr const char* incident_columns =
    "id, app_id, host_domain, category, incident, details, initiator, first_seen, last_seen, ack_updated_at, "
    "under_review, risk_level, script_key, raw_json, content_hash, substance_hash";

// Binds the 16 incident columns above, in order, starting at index 1.
void bind_incident(SQLite::Statement& st, const model::incident& inc, std::optional<std::int64_t> script_key,
                   std::int64_t content_hash, std::int64_t substance) {
    st.bindNoCopy(1, inc.id);
    bind_optional(st, 2, inc.app_id);
    bind_optional(st, 3, inc.host_domain);
    bind_optional(st, 4, inc.category);
    bind_optional(st, 5, inc.title);
    bind_optional(st, 6, inc.details);
    bind_optional(st, 7, inc.initiator);
    bind_optional(st, 8, inc.first_seen);
    bind_optional(st, 9, inc.last_seen);
    bind_optional(st, 10, inc.ack_updated_at);
    bind_optional(st, 11, inc.under_review);
    bind_optional(st, 12, inc.risk_level);
    if (script_key) st.bind(13, *script_key);
    else st.bind(13);
    st.bindNoCopy(14, inc.raw_json);
    st.bind(15, content_hash);
    st.bind(16, substance);
    if (inc.script) bind_optional(st, 18, inc.script->risk_level);  // not a ?: copy: it would not outlive the bind
    else st.bind(18);
}

}  // namespace

std::int64_t script_hash(const model::script& s) {
    util::content_hasher h;
    for (const auto* f : {&s.key, &s.id, &s.app_id, &s.host_domain, &s.type, &s.vendor, &s.first_seen, &s.last_seen,
                          &s.risk_level, &s.risk_reason})
        add_optional(h, *f);
    add_optional(h, s.users_affected_percentage);
    add_optional(h, s.ack);
    for (const auto& p : s.page_types) h.add(p);
    return h.value();
}

model::incident_hashes hashes_of(const model::incident& inc) {
    return {util::hash_bytes(inc.raw_json), substance_hash(inc), inc.script ? script_hash(*inc.script) : 0};
}

std::int64_t substance_hash(const model::incident& inc) {
    util::content_hasher h;
    h.add(inc.id);
    for (const auto* f : {&inc.app_id, &inc.host_domain, &inc.category, &inc.title, &inc.details, &inc.initiator,
                          &inc.first_seen, &inc.ack_updated_at, &inc.risk_level})
        add_optional(h, *f);
    add_optional(h, inc.under_review);
    for (const auto& p : inc.page_types) {
        h.add(p.name);
        h.add(std::int64_t{p.listed});
        add_optional(h, p.percentage);
    }
    if (inc.script) {
        model::script s = *inc.script;
        s.last_seen.reset();
        h.add(script_hash(s));
    }
    for (const auto& a : inc.actions) {
        add_optional(h, a.type);
        add_optional(h, a.subtype);
        for (const auto& [k, v] : a.args) {
            h.add(k);
            h.add(v);
        }
        h.add_separator();
    }
    for (const auto& v : inc.vulnerabilities) {
        add_optional(h, v.package);
        add_optional(h, v.version);
        for (const auto& id : v.ids) h.add(id);
        h.add_separator();
    }
    return h.value();
}

incident_store::incident_store(SQLite::Database& db, std::string path)
    : db_(db),
      path_(std::move(path)),
      find_incident_(db, "SELECT incident_key, content_hash FROM incidents WHERE id = ?"),
      insert_incident_(db, std::string("INSERT INTO incidents (") + incident_columns +
                               ", first_synced_at, last_synced_at, content_changed_at, script_risk_level) "
                               "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?, ?17, ?17, ?17, ?18)"),
      update_incident_(db,
                       "UPDATE incidents SET app_id=?2, host_domain=?3, category=?4, incident=?5, details=?6, "
                       "initiator=?7, first_seen=?8, last_seen=?9, ack_updated_at=?10, under_review=?11, "
                       "risk_level=?12, script_key=?13, raw_json=?14, content_hash=?15, substance_hash=?16, "
                       "last_synced_at=?17, script_risk_level=?18, "
                       "content_changed_at=CASE WHEN substance_hash=?16 THEN content_changed_at ELSE ?17 END "
                       "WHERE id=?1"),
      find_script_(db, "SELECT script_key, content_hash FROM scripts WHERE key = ?"),
      insert_script_(db,
                     "INSERT INTO scripts (key, id, app_id, host_domain, type, vendor, first_seen, last_seen, "
                     "users_affected_percentage, ack, risk_level, risk_reason, content_hash) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"),
      update_script_(db,
                     "UPDATE scripts SET id=?2, app_id=?3, host_domain=?4, type=?5, vendor=?6, first_seen=?7, "
                     "last_seen=?8, users_affected_percentage=?9, ack=?10, risk_level=?11, risk_reason=?12, "
                     "content_hash=?13 WHERE key=?1"),
      delete_script_page_types_(db, "DELETE FROM script_page_types WHERE script_key = ?"),
      insert_script_page_type_(db, "INSERT OR IGNORE INTO script_page_types (script_key, page_type) VALUES (?,?)"),
      page_type_rows_(db, "INSERT OR REPLACE INTO incident_page_types (incident_key, page_type, listed, percentage) "
                          "VALUES", 4),
      action_rows_(db, "INSERT INTO actions (incident_key, ordinal, type, subtype, last_seen) VALUES", 5),
      action_arg_rows_(db, "INSERT OR REPLACE INTO action_args (incident_key, action_ordinal, name, value) VALUES", 4),
      vulnerability_rows_(db, "INSERT INTO vulnerabilities (incident_key, ordinal, package, version) VALUES", 4),
      vulnerability_id_rows_(db,
                             "INSERT OR IGNORE INTO vulnerability_ids (incident_key, vulnerability_ordinal, "
                             "vulnerability_id, package, version, incident_last_seen) VALUES",
                             6),
      delete_page_types_(db, "DELETE FROM incident_page_types WHERE incident_key = ?"),
      delete_actions_(db, "DELETE FROM actions WHERE incident_key = ?"),
      delete_action_args_(db, "DELETE FROM action_args WHERE incident_key = ?"),
      delete_vulnerabilities_(db, "DELETE FROM vulnerabilities WHERE incident_key = ?"),
      delete_vulnerability_ids_(db, "DELETE FROM vulnerability_ids WHERE incident_key = ?"),
      upsert_state_success_(db,
                            "INSERT INTO sync_state (app_id, tld, watermark_ms, watermark, last_success_at, "
                            "auth_failing) VALUES (?1, ?2, ?3, ?4, ?5, 0) "
                            "ON CONFLICT(app_id, tld) DO UPDATE SET "
                            "watermark_ms = MAX(COALESCE(watermark_ms, ?3), ?3), "
                            "watermark = CASE WHEN COALESCE(watermark_ms, ?3) > ?3 THEN watermark ELSE ?4 END, "
                            "last_success_at = ?5, auth_failing = 0"),
      upsert_state_failure_(db,
                            "INSERT INTO sync_state (app_id, tld, last_error_at, last_error, auth_failing) "
                            "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(app_id, tld) DO UPDATE SET "
                            "last_error_at = ?3, last_error = ?4, auth_failing = ?5"),
      insert_run_(db,
                  "INSERT INTO sync_runs (app_id, tld, from_ms, to_ms, pages, incidents_seen, incidents_new, "
                  "incidents_changed, drift_corrections, started_at, finished_at, status, error, from_at, to_at) "
                  "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"),
      select_watermark_(db, "SELECT watermark_ms FROM sync_state WHERE app_id = ? AND tld = ?"),
      select_tracked_(db,
                      "SELECT risk_level, under_review, category, ack_updated_at, script_risk_level "
                      "FROM incidents WHERE incident_key = ?"),
      select_action_set_(db, "SELECT type, subtype FROM actions WHERE incident_key = ?"),
      select_vulnerability_set_(db,
                                "SELECT v.package, v.version, (SELECT group_concat(vulnerability_id, ', ') FROM "
                                "(SELECT vulnerability_id FROM vulnerability_ids vi WHERE vi.incident_key = "
                                "v.incident_key AND vi.vulnerability_ordinal = v.ordinal ORDER BY vulnerability_id)) "
                                "FROM vulnerabilities v WHERE v.incident_key = ?"),
      insert_change_(db,
                     "INSERT INTO incident_changes (incident_key, observed_at, field, old_value, new_value) "
                     "VALUES (?,?,?,?,?)"),
      insert_unknown_field_(db,
                            "INSERT OR IGNORE INTO unknown_fields (json_path, first_seen_at, example_incident_id) "
                            "VALUES (?,?,?)") {
    // The store keeps references itself: parents are written before their
    // children, and children are deleted explicitly before a rewrite. Checking
    // every child row's parent again cost 7% of a backfill's CPU. (A per-
    // connection setting: other connections choose their own.)
    db_.exec("PRAGMA foreign_keys=OFF");
}

result<upsert_counts> incident_store::commit_page(std::span<const model::incident> incidents, std::int64_t now_ms,
                                                  const slice_report* finish,
                                                  std::span<const model::unknown_field> unknown_fields) {
    if (auto r = begin(); !r) return r.error();
    auto counts = write_page(incidents, now_ms, finish, unknown_fields);
    if (!counts) return counts;
    if (auto r = commit(); !r) return r.error();
    return counts;
}

result<void> incident_store::begin() {
    try {
        step("begin");
        // IMMEDIATE takes the write lock up front, so a busy database fails here
        // (after busy_timeout) rather than half-way through a page.
        db_.exec("BEGIN IMMEDIATE");
        in_transaction_ = true;
        return {};
    } catch (const std::exception& e) {
        abandon_transaction();
        return sqlite_error(e, path_, "writing a page of incidents");
    }
}

result<upsert_counts> incident_store::write_page(std::span<const model::incident> incidents, std::int64_t now_ms,
                                                 const slice_report* finish,
                                                 std::span<const model::unknown_field> unknown_fields) {
    const std::string now_text = util::format_iso8601_ms(now_ms);
    try {
        upsert_counts counts = write_incidents(incidents, now_text);
        record_unknown_fields(unknown_fields, now_text);
        if (finish) finish_slice(*finish, counts, now_text);
        return counts;
    } catch (const std::exception& e) {
        abandon_transaction();
        return sqlite_error(e, path_, "writing a page of incidents");
    }
}

result<void> incident_store::commit() {
    try {
        step("commit");
        db_.exec("COMMIT");
        in_transaction_ = false;
        step("committed");
        for (auto& [_, committed] : unknown_fields_recorded_) committed = true;
        for (const auto& w : pending_warnings_) spdlog::warn("{}", w);
        pending_warnings_.clear();
        return {};
    } catch (const std::exception& e) {
        abandon_transaction();
        return sqlite_error(e, path_, "committing a page of incidents");
    }
}

void incident_store::rollback() noexcept { abandon_transaction(); }

std::optional<incident_store::incident_row> incident_store::find_incident(const std::string& id) {
    find_incident_.bindNoCopy(1, id);
    std::optional<incident_row> row;
    if (find_incident_.executeStep())
        row = incident_row{find_incident_.getColumn(0).getInt64(), find_incident_.getColumn(1).getInt64()};
    find_incident_.reset();
    return row;
}

result<std::optional<std::int64_t>> incident_store::stored_content_hash(const std::string& id) {
    try {
        const auto row = find_incident(id);
        return row ? std::optional<std::int64_t>(row->content_hash) : std::nullopt;
    } catch (const std::exception& e) {
        abandon_transaction();
        return sqlite_error(e, path_, "looking up a stored incident");
    }
}

void incident_store::abandon_transaction() noexcept {
    reset_statements();
    if (in_transaction_ && sqlite3_get_autocommit(db_.getHandle()) == 0) {
        try {
            db_.exec("ROLLBACK");
        } catch (const std::exception& e) {
            spdlog::warn("{}", sqlite_error(e, path_, "rolling back").message);
        }
    }
    in_transaction_ = false;
    // The rollback undid script rows this transaction may have added.
    script_cache_.clear();
    for (auto it = unknown_fields_recorded_.begin(); it != unknown_fields_recorded_.end();)
        it = it->second ? std::next(it) : unknown_fields_recorded_.erase(it);  // keep only committed ones
    pending_warnings_.clear();
}

upsert_counts incident_store::write_incidents(std::span<const model::incident> incidents,
                                              const std::string& now_text) {
    upsert_counts counts;
    for (const auto& inc : incidents) {
        step("incident");
        upsert_incident(inc, now_text, counts);
    }
    flush_children();
    return counts;
}

void incident_store::upsert_incident(const model::incident& inc, const std::string& now_text, upsert_counts& counts) {
    ++counts.seen;
    // Only the content hash until we know the incident must be written.
    const std::int64_t content = inc.hashes ? inc.hashes->content : util::hash_bytes(inc.raw_json);
    const auto stored = find_incident(inc.id);
    if (stored && stored->content_hash == content) {
        ++counts.unchanged;
        return;  // byte-identical to what we hold: write nothing
    }
    const std::optional<std::int64_t> existing_key =
        stored ? std::optional<std::int64_t>(stored->incident_key) : std::nullopt;

    const model::incident_hashes hashes = inc.hashes ? *inc.hashes : hashes_of(inc);
    const std::optional<std::int64_t> script_key =
        inc.script ? upsert_script(*inc.script, hashes.script) : std::nullopt;
    const std::int64_t substance = hashes.substance;
    std::int64_t incident_key;
    if (existing_key) {
        // The incident may be earlier in this page: its children must be in
        // their tables before they are compared and replaced.
        flush_children();
        record_changes(*existing_key, inc, now_text);  // before the update: it reads the old row
        bind_incident(update_incident_, inc, script_key, content, substance);
        update_incident_.bindNoCopy(17, now_text);
        run(update_incident_);
        incident_key = *existing_key;
        delete_children(incident_key);
        ++counts.changed;
    } else {
        bind_incident(insert_incident_, inc, script_key, content, substance);
        insert_incident_.bindNoCopy(17, now_text);
        run(insert_incident_);
        incident_key = db_.getLastInsertRowid();
        ++counts.inserted;
    }
    write_children(incident_key, inc);
}

std::optional<std::int64_t> incident_store::upsert_script(const model::script& s, std::int64_t hash) {
    // A script without a key cannot be shared safely; fall back to its id.
    std::string key;
    if (s.key) key = *s.key;
    else if (s.id) key = "id:" + *s.id;
    else return std::nullopt;

    auto cached = script_cache_.find(key);
    if (cached != script_cache_.end() && cached->second.content_hash == hash) return cached->second.script_key;

    std::optional<script_row> row;
    if (cached != script_cache_.end()) {
        row = cached->second;
    } else {
        find_script_.bind(1, key);
        if (find_script_.executeStep())
            row = script_row{find_script_.getColumn(0).getInt64(), find_script_.getColumn(1).getInt64()};
        find_script_.reset();
    }
    if (row && row->content_hash == hash) {
        script_cache_[key] = *row;
        return row->script_key;
    }

    SQLite::Statement& st = row ? update_script_ : insert_script_;
    st.bind(1, key);
    bind_optional(st, 2, s.id);
    bind_optional(st, 3, s.app_id);
    bind_optional(st, 4, s.host_domain);
    bind_optional(st, 5, s.type);
    bind_optional(st, 6, s.vendor);
    bind_optional(st, 7, s.first_seen);
    bind_optional(st, 8, s.last_seen);
    bind_optional(st, 9, s.users_affected_percentage);
    bind_optional(st, 10, s.ack);
    bind_optional(st, 11, s.risk_level);
    bind_optional(st, 12, s.risk_reason);
    st.bind(13, hash);
    run(st);
    const std::int64_t script_key = row ? row->script_key : db_.getLastInsertRowid();

    delete_script_page_types_.bind(1, script_key);
    run(delete_script_page_types_);
    for (const auto& p : s.page_types) {
        insert_script_page_type_.bind(1, script_key);
        insert_script_page_type_.bind(2, p);
        run(insert_script_page_type_);
    }
    if (script_cache_.size() > 4096) script_cache_.clear();  // bound memory (~0.5 MiB) on huge accounts
    script_cache_[key] = script_row{script_key, hash};
    return script_key;
}

void incident_store::delete_children(std::int64_t incident_key) {
    for (auto* st : {&delete_page_types_, &delete_action_args_, &delete_actions_, &delete_vulnerability_ids_,
                     &delete_vulnerabilities_}) {
        st->bind(1, incident_key);
        run(*st);
    }
}

void incident_store::write_children(std::int64_t incident_key, const model::incident& inc) {
    // Collected here, inserted by flush_children() (multi-row INSERTs).
    for (const auto& p : inc.page_types)
        page_type_rows_.add({incident_key, &p.name, std::int64_t{p.listed ? 1 : 0}, row_batch::real(p.percentage)});
    for (std::size_t i = 0; i < inc.actions.size(); ++i) {
        const auto& a = inc.actions[i];
        const auto ordinal = static_cast<std::int64_t>(i);
        action_rows_.add({incident_key, ordinal, row_batch::text(a.type), row_batch::text(a.subtype),
                          row_batch::text(a.last_seen)});
        for (const auto& [name, value] : a.args) action_arg_rows_.add({incident_key, ordinal, &name, &value});
    }
    for (std::size_t i = 0; i < inc.vulnerabilities.size(); ++i) {
        const auto& v = inc.vulnerabilities[i];
        const auto ordinal = static_cast<std::int64_t>(i);
        vulnerability_rows_.add({incident_key, ordinal, row_batch::text(v.package), row_batch::text(v.version)});
        // package, version and the incident's last_seen are copied for vulnerable_packages (schema 004).
        for (const auto& id : v.ids)
            vulnerability_id_rows_.add({incident_key, ordinal, &id, row_batch::text(v.package),
                                        row_batch::text(v.version), row_batch::text(inc.last_seen)});
    }
}

void incident_store::flush_children() {
    for (auto* rows : child_batches()) rows->flush();  // parents' tables first
}

void incident_store::finish_slice(const slice_report& report, const upsert_counts& page,
                                  const std::string& now_text) {
    upsert_counts totals = report.counts;
    totals += page;
    upsert_state_success_.bind(1, report.pair.app_id);
    upsert_state_success_.bind(2, report.pair.tld);
    upsert_state_success_.bind(3, report.to_ms);
    upsert_state_success_.bind(4, util::format_iso8601_ms(report.to_ms));
    upsert_state_success_.bind(5, now_text);
    run(upsert_state_success_);

    write_run(report, report.pages + 1, totals, now_text, nullptr);
}

void incident_store::write_run(const slice_report& report, std::int64_t pages, const upsert_counts& totals,
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
    if (error_text) insert_run_.bind(13, *error_text);
    else insert_run_.bind(13);
    insert_run_.bind(14, util::format_iso8601_ms(report.from_ms));
    insert_run_.bind(15, util::format_iso8601_ms(report.to_ms));
    run(insert_run_);
}

result<void> incident_store::record_failure(const slice_report& report, std::string_view error_text,
                                            std::int64_t now_ms, bool auth_failure) {
    const std::string now_text = util::format_iso8601_ms(now_ms);
    const std::string error_copy(error_text);
    try {
        SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
        upsert_state_failure_.bind(1, report.pair.app_id);
        upsert_state_failure_.bind(2, report.pair.tld);
        upsert_state_failure_.bind(3, now_text);
        upsert_state_failure_.bind(4, error_copy);
        upsert_state_failure_.bind(5, auth_failure ? 1 : 0);
        run(upsert_state_failure_);

        write_run(report, report.pages, report.counts, now_text, &error_copy);
        tx.commit();
        return {};
    } catch (const std::exception& e) {
        reset_statements();
        return sqlite_error(e, path_, "recording a failed sync");
    }
}

namespace {

// A set as history shows it: sorted, distinct, joined by `separator`.
std::string set_text(std::vector<std::string> items, std::string_view separator) {
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : std::string(separator)) + i;
    return out;
}

std::string action_item(std::string_view type, std::string_view subtype) {
    return std::string(type) + "/" + std::string(subtype);
}

std::string vulnerability_item(std::string_view package, std::string_view version, std::string_view ids) {
    return std::string(package) + "@" + std::string(version) + " (" + std::string(ids) + ")";
}

std::optional<std::string> bool_text(const std::optional<bool>& b) {
    if (!b) return std::nullopt;
    return *b ? "true" : "false";
}

std::optional<std::string> column_text(SQLite::Statement& st, int i) {
    if (st.getColumn(i).isNull()) return std::nullopt;
    return st.getColumn(i).getString();
}

}  // namespace

std::string action_set(const model::incident& inc) {
    std::vector<std::string> items;
    for (const auto& a : inc.actions) items.push_back(action_item(a.type.value_or(""), a.subtype.value_or("")));
    return set_text(std::move(items), ", ");
}

std::string vulnerability_set(const model::incident& inc) {
    std::vector<std::string> items;
    for (const auto& v : inc.vulnerabilities)
        items.push_back(vulnerability_item(v.package.value_or(""), v.version.value_or(""), set_text(v.ids, ", ")));
    return set_text(std::move(items), "; ");
}

void incident_store::record_changes(std::int64_t incident_key, const model::incident& inc,
                                    const std::string& now_text) {
    select_tracked_.bind(1, incident_key);
    if (!select_tracked_.executeStep()) {
        select_tracked_.reset();
        return;
    }
    struct tracked {
        const char* field;
        std::optional<std::string> old_value;
        std::optional<std::string> new_value;
    };
    std::vector<tracked> fields{
        {"risk_level", column_text(select_tracked_, 0), inc.risk_level},
        {"under_review",
         select_tracked_.getColumn(1).isNull()
             ? std::nullopt
             : std::optional<std::string>(select_tracked_.getColumn(1).getInt() ? "true" : "false"),
         bool_text(inc.under_review)},
        {"category", column_text(select_tracked_, 2), inc.category},
        {"ack_updated_at", column_text(select_tracked_, 3), inc.ack_updated_at},
        {"script_risk", column_text(select_tracked_, 4), inc.script ? inc.script->risk_level : std::nullopt},
    };
    select_tracked_.reset();

    std::vector<std::string> old_actions;
    select_action_set_.bind(1, incident_key);
    while (select_action_set_.executeStep()) {
        old_actions.push_back(action_item(column_text(select_action_set_, 0).value_or(""),
                                          column_text(select_action_set_, 1).value_or("")));
    }
    select_action_set_.reset();
    fields.push_back({"actions", set_text(std::move(old_actions), ", "), action_set(inc)});

    std::vector<std::string> old_vulns;
    select_vulnerability_set_.bind(1, incident_key);
    while (select_vulnerability_set_.executeStep()) {
        old_vulns.push_back(vulnerability_item(column_text(select_vulnerability_set_, 0).value_or(""),
                                               column_text(select_vulnerability_set_, 1).value_or(""),
                                               column_text(select_vulnerability_set_, 2).value_or("")));
    }
    select_vulnerability_set_.reset();
    fields.push_back({"vulnerabilities", set_text(std::move(old_vulns), "; "), vulnerability_set(inc)});

    for (const auto& f : fields) {
        if (f.old_value == f.new_value) continue;
        insert_change_.bind(1, incident_key);
        insert_change_.bind(2, now_text);
        insert_change_.bind(3, f.field);
        bind_optional(insert_change_, 4, f.old_value);
        bind_optional(insert_change_, 5, f.new_value);
        run(insert_change_);
    }
}

void incident_store::record_unknown_fields(std::span<const model::unknown_field> fields,
                                           const std::string& now_text) {
    for (const auto& f : fields) {
        if (unknown_fields_recorded_.contains(f.json_path)) continue;
        insert_unknown_field_.bind(1, f.json_path);
        insert_unknown_field_.bind(2, now_text);
        insert_unknown_field_.bind(3, f.incident_id);
        run(insert_unknown_field_);
        if (db_.getChanges() == 1)
            pending_warnings_.push_back(fmt::format(
                "the API sent a field the schema does not know: {} (e.g. incident {}); it is kept in raw_json and "
                "listed in the unknown_fields table",
                f.json_path, f.incident_id));
        // false until the transaction commits; a rollback forgets it.
        unknown_fields_recorded_[f.json_path] = false;
    }
}

void incident_store::checkpoint() {
    try {
        db_.exec("PRAGMA wal_checkpoint(PASSIVE)");
    } catch (const std::exception& e) {
        spdlog::warn("{}", sqlite_error(e, path_, "checkpointing the write-ahead log").message);
    }
}

// Schema 005's statements, character for character (DeferredIndexes tests hold
// them equal to what SQLite stores for the migrated schema).
const std::array<deferred_trigger, 3> vulnerable_package_count_triggers{{
    {"vulnerable_package_counts_after_insert",
     R"sql(CREATE TRIGGER vulnerable_package_counts_after_insert AFTER INSERT ON vulnerability_ids
BEGIN
    INSERT INTO vulnerable_package_counts (package, version, vulnerability_id, incidents, last_seen)
    SELECT NEW.package, NEW.version, NEW.vulnerability_id, 0, NULL
    WHERE NOT EXISTS (SELECT 1 FROM vulnerable_package_counts
                      WHERE package IS NEW.package AND version IS NEW.version
                        AND vulnerability_id = NEW.vulnerability_id);
    UPDATE vulnerable_package_counts
    SET incidents = incidents + NOT EXISTS (SELECT 1 FROM vulnerability_ids
                                            WHERE incident_key = NEW.incident_key
                                              AND vulnerability_ordinal <> NEW.vulnerability_ordinal
                                              AND vulnerability_id = NEW.vulnerability_id
                                              AND package IS NEW.package AND version IS NEW.version),
        last_seen = COALESCE(MAX(last_seen, NEW.incident_last_seen), last_seen, NEW.incident_last_seen)
    WHERE package IS NEW.package AND version IS NEW.version AND vulnerability_id = NEW.vulnerability_id;
END)sql"},
    {"vulnerable_package_counts_after_delete",
     R"sql(CREATE TRIGGER vulnerable_package_counts_after_delete AFTER DELETE ON vulnerability_ids
BEGIN
    UPDATE vulnerable_package_counts
    SET incidents = incidents - NOT EXISTS (SELECT 1 FROM vulnerability_ids
                                            WHERE incident_key = OLD.incident_key
                                              AND vulnerability_id = OLD.vulnerability_id
                                              AND package IS OLD.package AND version IS OLD.version),
        last_seen = CASE WHEN OLD.incident_last_seen IS NULL OR OLD.incident_last_seen < last_seen THEN last_seen
                         ELSE (SELECT MAX(incident_last_seen) FROM vulnerability_ids
                               WHERE package IS OLD.package AND version IS OLD.version
                                 AND vulnerability_id = OLD.vulnerability_id) END
    WHERE package IS OLD.package AND version IS OLD.version AND vulnerability_id = OLD.vulnerability_id;
    DELETE FROM vulnerable_package_counts
    WHERE package IS OLD.package AND version IS OLD.version AND vulnerability_id = OLD.vulnerability_id
      AND incidents = 0;
END)sql"},
    {"vulnerable_package_counts_after_update",
     R"sql(CREATE TRIGGER vulnerable_package_counts_after_update
AFTER UPDATE OF incident_key, vulnerability_id, package, version, incident_last_seen ON vulnerability_ids
BEGIN
    DELETE FROM vulnerable_package_counts
    WHERE package IS OLD.package AND version IS OLD.version AND vulnerability_id = OLD.vulnerability_id;
    INSERT INTO vulnerable_package_counts (package, version, vulnerability_id, incidents, last_seen)
    SELECT package, version, vulnerability_id, COUNT(DISTINCT incident_key), MAX(incident_last_seen)
    FROM vulnerability_ids
    WHERE package IS OLD.package AND version IS OLD.version AND vulnerability_id = OLD.vulnerability_id
    GROUP BY package, version, vulnerability_id;
    DELETE FROM vulnerable_package_counts
    WHERE package IS NEW.package AND version IS NEW.version AND vulnerability_id = NEW.vulnerability_id;
    INSERT INTO vulnerable_package_counts (package, version, vulnerability_id, incidents, last_seen)
    SELECT package, version, vulnerability_id, COUNT(DISTINCT incident_key), MAX(incident_last_seen)
    FROM vulnerability_ids
    WHERE package IS NEW.package AND version IS NEW.version AND vulnerability_id = NEW.vulnerability_id
    GROUP BY package, version, vulnerability_id;
END)sql"},
}};

const std::string_view vulnerable_package_counts_fill =
    R"sql(INSERT INTO vulnerable_package_counts (package, version, vulnerability_id, incidents, last_seen)
SELECT package, version, vulnerability_id, COUNT(DISTINCT incident_key), MAX(incident_last_seen)
FROM vulnerability_ids
GROUP BY package, version, vulnerability_id)sql";

const std::string_view vulnerable_packages_view = R"sql(CREATE VIEW vulnerable_packages AS
SELECT package, version, vulnerability_id, incidents, last_seen
FROM vulnerable_package_counts)sql";

// Schema 004's.
const std::string_view vulnerable_packages_view_without_counts = R"sql(CREATE VIEW vulnerable_packages AS
SELECT package, version, vulnerability_id,
       COUNT(DISTINCT incident_key) AS incidents,
       MAX(incident_last_seen) AS last_seen
FROM vulnerability_ids
GROUP BY package, version, vulnerability_id)sql";

std::vector<deferred_index> missing_deferred_indexes(SQLite::Database& db) {
    SQLite::Statement exists(db, "SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?");
    std::vector<deferred_index> missing;
    for (const auto& index : deferred_indexes) {
        exists.bind(1, std::string(index.name));
        if (!exists.executeStep()) missing.push_back(index);
        exists.reset();
    }
    return missing;
}

std::vector<deferred_trigger> missing_vulnerable_package_count_triggers(SQLite::Database& db) {
    SQLite::Statement exists(db, "SELECT 1 FROM sqlite_schema WHERE type = 'trigger' AND name = ?");
    std::vector<deferred_trigger> missing;
    for (const auto& trigger : vulnerable_package_count_triggers) {
        exists.bind(1, std::string(trigger.name));
        if (!exists.executeStep()) missing.push_back(trigger);
        exists.reset();
    }
    return missing;
}

void incident_store::defer_indexes_while_empty() {
    try {
        // A database with incidents and without the indexes (or the
        // summary's triggers) is one whose first backfill stopped early:
        // build_deferred_indexes() makes them.
        indexes_deferred_ = true;
        if (!db_.execAndGet("SELECT NOT EXISTS (SELECT 1 FROM incidents)").getInt()) {
            build_deferred_indexes();
            return;
        }
        SQLite::Transaction txn(db_, SQLite::TransactionBehavior::IMMEDIATE);
        for (const auto& index : deferred_indexes) db_.exec(fmt::format("DROP INDEX IF EXISTS {}", index.name));
        // Without its triggers the summary would go stale: the view computes
        // the same rows from vulnerability_ids (slower) until it is built.
        for (const auto& trigger : vulnerable_package_count_triggers)
            db_.exec(fmt::format("DROP TRIGGER IF EXISTS {}", trigger.name));
        db_.exec("DELETE FROM vulnerable_package_counts");
        db_.exec("DROP VIEW IF EXISTS vulnerable_packages");
        db_.exec(std::string(vulnerable_packages_view_without_counts));
        txn.commit();
        spdlog::debug("empty database: indexes and the vulnerable_packages summary are built after the first pass");
    } catch (const std::exception& e) {
        spdlog::warn("{}", sqlite_error(e, path_, "preparing a first backfill (dropping reader indexes)").message);
    }
}

void incident_store::build_deferred_indexes() {
    if (!indexes_deferred_) return;
    try {
        const auto missing = missing_deferred_indexes(db_);
        const bool counts_missing = !missing_vulnerable_package_count_triggers(db_).empty();
        if (missing.empty() && !counts_missing) {
            indexes_deferred_ = false;
            return;
        }
        const auto started = std::chrono::steady_clock::now();
        // CREATE INDEX sorts in memory up to the page cache's size before it
        // spills to a temporary file; a quarter of it keeps the daemon's peak
        // memory where a backfill has it (measured: +3.5 MiB with the full cache).
        const int cache_size = db_.execAndGet("PRAGMA cache_size").getInt();
        db_.exec(fmt::format("PRAGMA cache_size={}", cache_size / 4));
        struct restore_cache {
            SQLite::Database& db;
            int size;
            ~restore_cache() {
                try {
                    db.exec(fmt::format("PRAGMA cache_size={}", size));
                } catch (...) {  // only a smaller cache: slower, still correct
                }
            }
        } restore{db_, cache_size};
        SQLite::Transaction txn(db_, SQLite::TransactionBehavior::IMMEDIATE);
        for (const auto& index : missing) db_.exec(std::string(index.definition));
        if (counts_missing) {
            // After the indexes: the fill's GROUP BY is then one ordered pass
            // over vulnerability_ids_by_package, and its rows arrive in the
            // order of the summary's own key. Every trigger again, even one
            // that survived: the table is only exact with all three.
            for (const auto& trigger : vulnerable_package_count_triggers)
                db_.exec(fmt::format("DROP TRIGGER IF EXISTS {}", trigger.name));
            db_.exec("DELETE FROM vulnerable_package_counts");
            db_.exec(std::string(vulnerable_package_counts_fill));
            for (const auto& trigger : vulnerable_package_count_triggers) db_.exec(std::string(trigger.definition));
            db_.exec("DROP VIEW IF EXISTS vulnerable_packages");
            db_.exec(std::string(vulnerable_packages_view));
        }
        txn.commit();
        indexes_deferred_ = false;
        spdlog::info("built {} index(es) for readers{} in {} ms", missing.size(),
                     counts_missing ? " and the vulnerable_packages summary" : "",
                     std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
                         .count());
    } catch (const std::exception& e) {
        spdlog::warn("{}; it is tried again when the daemon is next idle",
                     sqlite_error(e, path_, "building the indexes for readers").message);
    }
}

void incident_store::reset_statements() noexcept {
    for (auto* st : {&find_incident_, &insert_incident_, &update_incident_, &find_script_, &insert_script_,
                     &update_script_, &delete_script_page_types_, &insert_script_page_type_, &delete_page_types_,
                     &delete_actions_, &delete_action_args_, &delete_vulnerabilities_, &delete_vulnerability_ids_,
                     &upsert_state_success_, &upsert_state_failure_, &insert_run_,
                     &select_watermark_, &select_tracked_, &select_action_set_, &select_vulnerability_set_,
                     &insert_change_, &insert_unknown_field_})
        st->tryReset();
    for (auto* rows : child_batches()) rows->clear();
}

result<std::optional<std::int64_t>> incident_store::watermark(const config::pair& pair) {
    try {
        select_watermark_.bind(1, pair.app_id);
        select_watermark_.bind(2, pair.tld);
        std::optional<std::int64_t> value;
        if (select_watermark_.executeStep() && !select_watermark_.getColumn(0).isNull())
            value = select_watermark_.getColumn(0).getInt64();
        select_watermark_.reset();
        return value;
    } catch (const std::exception& e) {
        select_watermark_.tryReset();
        return sqlite_error(e, path_, "reading the watermark");
    }
}

result<std::vector<stored_pair_state>> incident_store::sync_states() {
    return read_sync_states(db_, path_, /*count_incidents=*/false);
}

}  // namespace isync::store
