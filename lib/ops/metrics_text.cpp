#include "ops/metrics_text.hpp"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace isync::ops {
namespace {

// Label values escape backslash, quote and newline.
std::string label(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out.push_back('\\');
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out.push_back(c);
    }
    return out;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void counter(std::string& out, std::string_view name, std::string_view help, std::uint64_t value) {
    header(out, name, "counter", help);
    out += fmt::format("{} {}\n", name, value);
}

std::string pair_labels(const config::pair& p) {
    return fmt::format("app_id=\"{}\",tld=\"{}\"", label(p.app_id), label(p.tld));
}

}  // namespace

std::string render_metrics(const metrics_input& in) {
    const auto& s = in.stats;
    std::string out;
    header(out, "incident_sync_http_responses_total", "counter", "HTTP responses from the API by status class.");
    std::map<std::string, std::uint64_t> by_class;
    for (const auto& [status, count] : s.responses_by_status) by_class[fmt::format("{}xx", status / 100)] += count;
    for (const auto& [cls, count] : by_class)
        out += fmt::format("incident_sync_http_responses_total{{status_class=\"{}\"}} {}\n", cls, count);
    out += fmt::format("incident_sync_http_responses_total{{status_class=\"none\"}} {}\n", s.transport_failures);

    counter(out, "incident_sync_requests_total", "Requests sent to the API, retries included.", s.requests);
    header(out, "incident_sync_page_fetches_total", "counter",
           "Page fetches by outcome: ok (first try), retried (succeeded after retries), failed.");
    out += fmt::format("incident_sync_page_fetches_total{{outcome=\"ok\"}} {}\n", s.fetches_ok);
    out += fmt::format("incident_sync_page_fetches_total{{outcome=\"retried\"}} {}\n", s.fetches_retried);
    out += fmt::format("incident_sync_page_fetches_total{{outcome=\"failed\"}} {}\n", s.fetches_failed);
    counter(out, "incident_sync_retries_total", "Requests repeated after a transient failure.", s.retries);
    counter(
        out, "incident_sync_pages_total",
        "Pages written into the database's open transaction (they commit with it, or roll back with it on a failure).",
        s.pages);
    header(out, "incident_sync_incidents_upserted_total", "counter", "Incidents received, by what the store did.");
    out += fmt::format("incident_sync_incidents_upserted_total{{result=\"new\"}} {}\n", s.incidents_new);
    out += fmt::format("incident_sync_incidents_upserted_total{{result=\"changed\"}} {}\n", s.incidents_changed);
    out += fmt::format("incident_sync_incidents_upserted_total{{result=\"unchanged\"}} {}\n", s.incidents_unchanged);
    counter(out, "incident_sync_drift_corrections_total",
            "Paging corrections made because the result set moved while it was read.", s.drift_corrections);

    header(out, "incident_sync_discovery_total", "counter",
           "Pair discoveries (GET /v1/account-settings, sync.discover) by result.");
    out += fmt::format("incident_sync_discovery_total{{result=\"ok\"}} {}\n", s.discoveries_ok);
    out += fmt::format("incident_sync_discovery_total{{result=\"failed\"}} {}\n", s.discoveries_failed);
    header(out, "incident_sync_discovery_last_success_timestamp_seconds", "gauge",
           "Unix time of the last successful pair discovery (0 before the first, or without sync.discover).");
    out += fmt::format("incident_sync_discovery_last_success_timestamp_seconds {:.3f}\n",
                       s.last_discovery_ms ? static_cast<double>(*s.last_discovery_ms) / 1000.0 : 0.0);
    header(out, "incident_sync_pairs", "gauge", "Pairs polled: sync.pairs and the pairs discovery selected.");
    out += fmt::format("incident_sync_pairs {}\n", in.pairs.size());

    header(out, "incident_sync_sync_duration_seconds", "histogram", "Duration of one poll of one pair.");
    for (std::size_t i = 0; i < s.duration_buckets.size(); ++i)
        out += fmt::format("incident_sync_sync_duration_seconds_bucket{{le=\"{}\"}} {}\n", s.duration_buckets[i],
                           s.duration_counts[i]);
    out += fmt::format("incident_sync_sync_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", s.duration_count);
    out += fmt::format("incident_sync_sync_duration_seconds_sum {}\n", s.duration_sum);
    out += fmt::format("incident_sync_sync_duration_seconds_count {}\n", s.duration_count);

    header(out, "incident_sync_watermark_lag_seconds", "gauge",
           "How far each pair's watermark is behind now (absent before its first commit).");
    for (const auto& [p, h] : in.pairs)
        if (h.watermark_ms)
            out += fmt::format("incident_sync_watermark_lag_seconds{{{}}} {:.3f}\n", pair_labels(p),
                               static_cast<double>(in.now_ms - *h.watermark_ms) / 1000.0);
    header(out, "incident_sync_last_success_timestamp_seconds", "gauge",
           "Unix time of each pair's last successful poll (0 before the first).");
    for (const auto& [p, h] : in.pairs)
        out += fmt::format("incident_sync_last_success_timestamp_seconds{{{}}} {:.3f}\n", pair_labels(p),
                           h.last_success_ms ? static_cast<double>(*h.last_success_ms) / 1000.0 : 0.0);
    header(out, "incident_sync_pair_healthy", "gauge",
           "1 while the pair synced within three sync.interval or is backfilling: the rule of /readyz and "
           "`status --check`.");
    if (in.health)
        for (const auto& v : in.health->pairs)
            if (v.state != pair_state::removed)
                out += fmt::format("incident_sync_pair_healthy{{{}}} {}\n", pair_labels(v.pair), v.healthy ? 1 : 0);
    if (in.leased_elsewhere) {
        header(out, "incident_sync_pair_lease_held", "gauge",
               "Daemons sharing a database: 1 for each pair this daemon holds the lease of (polls), 0 for a pair "
               "another daemon holds.");
        for (const auto& [p, h] : in.pairs)
            out += fmt::format("incident_sync_pair_lease_held{{{}}} 1\n", pair_labels(p));
        for (const auto& p : *in.leased_elsewhere)
            out += fmt::format("incident_sync_pair_lease_held{{{}}} 0\n", pair_labels(p));
    }
    header(out, "incident_sync_pair_auth_failing", "gauge", "1 while the API refuses the token for the pair.");
    for (const auto& [p, h] : in.pairs)
        out += fmt::format("incident_sync_pair_auth_failing{{{}}} {}\n", pair_labels(p), h.auth_failing ? 1 : 0);

    header(out, "incident_sync_poll_incidents_read", "gauge",
           "Distinct incidents read so far by each pair's poll in progress (absent when not polling).");
    for (const auto& [p, pr] : in.progress)
        out += fmt::format("incident_sync_poll_incidents_read{{{}}} {}\n", pair_labels(p), pr.read);
    header(out, "incident_sync_poll_incidents_expected", "gauge",
           "The API's paging.count summed over the slices begun by each pair's poll in progress.");
    for (const auto& [p, pr] : in.progress)
        out += fmt::format("incident_sync_poll_incidents_expected{{{}}} {}\n", pair_labels(p), pr.window_count);
    header(out, "incident_sync_poll_slice", "gauge", "The slice each pair's poll in progress is reading (1-based).");
    for (const auto& [p, pr] : in.progress)
        out += fmt::format("incident_sync_poll_slice{{{}}} {}\n", pair_labels(p), pr.slice);
    header(out, "incident_sync_poll_slices", "gauge", "Slices planned by each pair's poll in progress.");
    for (const auto& [p, pr] : in.progress)
        out += fmt::format("incident_sync_poll_slices{{{}}} {}\n", pair_labels(p), pr.slices);

    const auto& src = in.source;
    header(out, "incident_sync_api_concurrency_limit", "gauge",
           "Requests allowed in flight to the API now (adaptive; api.max_in_flight is its ceiling).");
    out += fmt::format("incident_sync_api_concurrency_limit {}\n", src.limit);
    header(out, "incident_sync_api_requests_in_flight", "gauge", "Requests to the API in flight now.");
    out += fmt::format("incident_sync_api_requests_in_flight {}\n", src.in_flight);
    header(out, "incident_sync_api_requests_in_flight_peak", "gauge", "The most requests in flight at once so far.");
    out += fmt::format("incident_sync_api_requests_in_flight_peak {}\n", src.peak_in_flight);
    counter(out, "incident_sync_api_limit_decreases_total",
            "Times the limit was lowered (429, 503, a timeout or a round-trip spike).", src.limit_decreases);
    counter(out, "incident_sync_api_rate_limit_budget_waits_total",
            "Waits for the API's rate-limit window to reset, once its stated budget (X-RateLimit-Remaining) was spent.",
            src.budget_waits);
    counter(out, "incident_sync_api_rate_limit_pauses_total",
            "429s with Retry-After that paused every request to the API.", src.pauses);
    counter(out, "incident_sync_api_body_bytes_received_total",
            "Response body bytes as received (compressed when the API compressed them).", src.wire_body_bytes);
    counter(out, "incident_sync_api_body_bytes_decoded_total", "Response body bytes after decoding.",
            src.decoded_body_bytes);

    if (in.database_bytes) {
        header(out, "incident_sync_database_size_bytes", "gauge", "Size of the SQLite database file.");
        out += fmt::format("incident_sync_database_size_bytes {}\n", *in.database_bytes);
    }
    if (in.wal_bytes) {
        header(out, "incident_sync_wal_size_bytes", "gauge", "Size of the SQLite write-ahead log.");
        out += fmt::format("incident_sync_wal_size_bytes {}\n", *in.wal_bytes);
    }
    return out;
}

readiness render_readiness(const health_verdict& verdict) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("status");
    w.String(!verdict.healthy ? "not ready" : verdict.backfilling ? "backfill in progress" : "ready");
    w.Key("reason");
    w.String(verdict.summary);
    w.Key("stale");  // the pairs that make it not ready
    w.StartArray();
    for (const auto& p : verdict.pairs)
        if (!p.healthy) w.String(p.pair.app_id + "/" + p.pair.tld);
    w.EndArray();
    w.Key("pairs");
    w.StartArray();
    for (const auto& p : verdict.pairs) {
        w.StartObject();
        w.Key("pair");
        w.String(p.pair.app_id + "/" + p.pair.tld);
        w.Key("state");
        w.String(state_name(p.state));
        w.Key("reason");
        w.String(p.reason);
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return {verdict.healthy, std::string(buf.GetString(), buf.GetSize())};
}

}  // namespace isync::ops
