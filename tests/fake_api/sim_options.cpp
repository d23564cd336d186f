#include "fake_api/sim_options.hpp"

#include "util/duration.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <limits>

namespace fake_api {
namespace {

isync::error usage(std::string message) { return isync::make_error(isync::errc::usage, std::move(message)); }

template <class T>
std::optional<T> number(std::string_view text) {
    T value{};
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
    return value;
}

// A latency-like duration: `<digits><unit>`, at most an hour (a longer wait
// is a hang, which --delay-ms and never_answer already simulate).
std::optional<std::chrono::milliseconds> link_duration(std::string_view text) {
    const auto d = isync::util::parse_duration(text);
    if (!d || *d > std::chrono::hours(1)) return std::nullopt;
    return d;
}

// `APPID=STATUS` with STATUS 401, 403 or 422.
isync::result<std::pair<std::string, app_refusal>> refusal(std::string_view text) {
    const auto equals = text.rfind('=');
    if (equals == std::string_view::npos || equals == 0)
        return usage("--refuse: expected APPID=STATUS, got \"" + std::string(text) + "\"");
    const auto status = number<unsigned>(text.substr(equals + 1));
    std::pair<std::string, app_refusal> out{std::string(text.substr(0, equals)), app_refusal::unauthorized};
    if (status == 401u)
        out.second = app_refusal::unauthorized;
    else if (status == 403u)
        out.second = app_refusal::forbidden;
    else if (status == 422u)
        out.second = app_refusal::invalid;
    else
        return usage("--refuse: STATUS must be 401, 403 or 422, got \"" + std::string(text.substr(equals + 1)) + "\"");
    return out;
}

}  // namespace

std::string sim_usage() {
    return R"(usage: incident-sim [options]

A fake HUMAN Code Defender API (GET /v1/incidents) over HTTPS on 127.0.0.1,
with a CA made at start-up. Runs until SIGTERM or SIGINT.

  --port N              listen port (default 0: ephemeral)
  --seed N              dataset seed (default 1)
  --incidents N         incidents to generate (default 1000)
  --pairs N             generate N pairs: app PXsim000.., tld site000.example.. (default 1)
  --pair APP:TLD        serve this pair instead (repeatable)
  --span D              last_seen spread over the D before now (default 24h; units ms s m h d)
  --token T             expected bearer token (default test-token)
  --token-file F        read the token from F (surrounding whitespace ignored)
  --take-cap N          clamp `take` to N (default 1000)
  --max-result-window N refuse a request whose skip + take exceeds N with 400, as a search
                        backend does (Elasticsearch's default is 10000; default 0: no bound)
  --ca-out PATH         write the CA certificate (PEM) here
  --port-file PATH      write the bound port here once listening (atomically, via rename)
  --stats-file PATH     at exit, also write the final stats JSON line here (atomically, via rename)
  --refuse APPID=STATUS refuse requests for APPID, whatever the token (repeatable); STATUS is
                        401 {"message":"Unauthorized"}, 403 {"message":"Forbidden"} or
                        422 {"message":"Invalid appId APPID"}
  --latency D           wait D before every answer, without holding up other requests (e.g. 100ms)
  --latency-jitter D    plus a uniform extra wait in [0, D] (default 0ms)
  --max-in-flight N     serve at most N requests at once (latency included); answer 429 at once
                        to a request beyond that (default 0: unlimited)
  --retry-after-seconds S  the Retry-After of every 429 (default 1)
  --rate-limit N/D      allow N requests per window of D (e.g. 150/1m), stated on every answer as
                        X-RateLimit-Limit, -Remaining and -Reset (epoch seconds); answer 429 at once,
                        Retry-After the seconds to the reset, beyond it (default: no limit)
  --no-gzip             send bodies uncompressed even when Accept-Encoding allows gzip or deflate
                        (by default: gzip if accepted, else deflate if accepted)
  --fail-every K        answer 500 to every Kth request
  --rate-limit-every K  answer 429 (Retry-After: see --retry-after-seconds) to every Kth request
  --truncate-every K    cut every Kth 200 body in half and close
  --malformed-every K   send broken JSON in every Kth 200
  --reset-every K       reset the connection instead of every Kth answer
  --wrong-content-type-every K  send an HTML page instead of every Kth 200
  --delay-ms N          wait N ms before every answer
  --live M              before each request, change M incidents and add M new ones
  --account-file F      answer GET /v1/account-settings with F's bytes, read at every request
                        (edit it while the sim runs; default: one application per appId of
                        the pairs served, their tlds as domains, plus a disabled PXsimoff)
  --help                this text

On SIGTERM or SIGINT it stops and prints its stats as one JSON line on stdout:
{"requests":N,"status_counts":{"200":N,...},"bytes_sent":N,"body_bytes_uncompressed":N,
 "peak_in_flight":N,"refused_429":N,"rate_limited_429":N,"connections_accepted":N,"incidents_served":N,
 "account_settings_requests":N}
(bytes_sent: response bodies as sent, after compression; refused_429: the 429s for --max-in-flight;
rate_limited_429: the 429s for --rate-limit).
)";
}

isync::result<sim_options> parse_sim_args(std::span<const std::string_view> args, std::int64_t now_ms) {
    sim_options o;
    std::size_t pair_count = 1;
    bool pair_count_given = false;
    bool pairs_given = false;
    auto span = std::chrono::milliseconds(std::chrono::hours(24));

    for (std::size_t k = 0; k < args.size(); ++k) {
        const auto flag = args[k];
        if (flag == "--help" || flag == "-h") {
            o.help = true;
            return o;
        }
        if (flag == "--no-gzip") {  // the one flag without a value
            o.server.link.compression = false;
            continue;
        }
        if (k + 1 >= args.size()) return usage(std::string(flag) + ": unknown flag or missing value");
        const auto value = args[++k];
        const auto count = number<std::uint32_t>(value);
        auto need_count = [&]() -> std::optional<isync::error> {
            if (count) return std::nullopt;
            return usage(std::string(flag) + ": expected a non-negative integer, got \"" + std::string(value) + "\"");
        };

        if (flag == "--port") {
            const auto port = number<std::uint16_t>(value);
            if (!port) return usage("--port: expected 0-65535, got \"" + std::string(value) + "\"");
            o.server.port = *port;
        } else if (flag == "--seed") {
            const auto seed = number<std::uint64_t>(value);
            if (!seed) return usage("--seed: expected a non-negative integer");
            o.server.data.seed = *seed;
        } else if (flag == "--incidents") {
            if (auto e = need_count()) return *e;
            o.server.data.incidents = *count;
        } else if (flag == "--pairs") {
            if (auto e = need_count()) return *e;
            if (*count == 0) return usage("--pairs: at least 1");
            pair_count = *count;
            pair_count_given = true;
        } else if (flag == "--pair") {
            const auto colon = value.find(':');
            if (colon == std::string_view::npos || colon == 0 || colon + 1 == value.size())
                return usage("--pair: expected APP:TLD, got \"" + std::string(value) + "\"");
            o.server.data.pairs.push_back({std::string(value.substr(0, colon)), std::string(value.substr(colon + 1))});
            pairs_given = true;
        } else if (flag == "--span") {
            const auto d = isync::util::parse_duration(value);
            if (!d || d->count() <= 0) return usage("--span: expected a positive duration like 7d or 90m");
            span = *d;
        } else if (flag == "--token") {
            o.server.token = value;
        } else if (flag == "--token-file") {
            o.token_file = value;
        } else if (flag == "--take-cap") {
            if (auto e = need_count()) return *e;
            o.server.take_cap = *count;
        } else if (flag == "--max-result-window") {
            if (auto e = need_count()) return *e;
            o.server.max_result_window = *count;
        } else if (flag == "--ca-out") {
            o.ca_out = value;
        } else if (flag == "--port-file") {
            o.port_file = value;
        } else if (flag == "--stats-file") {
            o.stats_file = value;
        } else if (flag == "--refuse") {
            auto r = refusal(value);
            if (!r) return r.error();
            if (!o.server.refused_app_ids.insert(std::move(*r)).second)
                return usage("--refuse: " + std::string(value.substr(0, value.rfind('='))) + " is refused twice");
        } else if (flag == "--latency" || flag == "--latency-jitter") {
            const auto d = link_duration(value);
            if (!d)
                return usage(std::string(flag) + ": expected a duration up to 1h like 100ms or 2s, got \"" +
                             std::string(value) + "\"");
            (flag == "--latency" ? o.server.link.latency : o.server.link.latency_jitter) = *d;
        } else if (flag == "--max-in-flight") {
            if (auto e = need_count()) return *e;
            o.server.link.max_in_flight = *count;
        } else if (flag == "--rate-limit") {
            const auto slash = value.find('/');
            const auto n =
                slash == std::string_view::npos ? std::nullopt : number<std::uint32_t>(value.substr(0, slash));
            const auto d = slash == std::string_view::npos ? std::nullopt : link_duration(value.substr(slash + 1));
            if (!n || *n == 0 || !d || d->count() <= 0)
                return usage("--rate-limit: expected N/D with N > 0 and a duration up to 1h, like 150/1m, got \"" +
                             std::string(value) + "\"");
            o.server.link.rate_limit = *n;
            o.server.link.rate_window = *d;
        } else if (flag == "--retry-after-seconds") {
            if (auto e = need_count()) return *e;
            o.server.link.retry_after_seconds = *count;
            o.server.faults.retry_after_seconds = *count;
        } else if (flag == "--fail-every") {
            if (auto e = need_count()) return *e;
            o.server.faults.fail_every_kth = *count;
        } else if (flag == "--rate-limit-every") {
            if (auto e = need_count()) return *e;
            o.server.faults.rate_limit_every_kth = *count;
        } else if (flag == "--truncate-every") {
            if (auto e = need_count()) return *e;
            o.server.faults.truncate_every_kth = *count;
        } else if (flag == "--malformed-every") {
            if (auto e = need_count()) return *e;
            o.server.faults.malformed_every_kth = *count;
        } else if (flag == "--reset-every") {
            if (auto e = need_count()) return *e;
            o.server.faults.reset_every_kth = *count;
        } else if (flag == "--wrong-content-type-every") {
            if (auto e = need_count()) return *e;
            o.server.faults.wrong_content_type_every_kth = *count;
        } else if (flag == "--delay-ms") {
            if (auto e = need_count()) return *e;
            o.server.faults.delay = std::chrono::milliseconds(*count);
        } else if (flag == "--account-file") {
            o.server.account_file = std::string(value);
        } else if (flag == "--live") {
            if (auto e = need_count()) return *e;
            o.server.faults.live_changes_per_request = *count;
        } else {
            return usage(std::string(flag) + ": unknown flag (see --help)");
        }
    }
    if (pairs_given && pair_count_given) return usage("--pair and --pairs exclude each other");
    if (!pairs_given) o.server.data.pairs = sim_pairs(pair_count);
    o.server.data.end_ms = now_ms;
    o.server.data.start_ms = now_ms - span.count();
    return o;
}

std::string sim_stats_json(const server_stats& stats) {
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> w(out);
    w.StartObject();
    w.Key("requests");
    w.Uint64(stats.requests);
    w.Key("status_counts");
    w.StartObject();
    for (const auto& [status, n] : stats.status_counts) {
        const auto key = std::to_string(status);
        w.Key(key.c_str(), static_cast<rapidjson::SizeType>(key.size()));
        w.Uint64(n);
    }
    w.EndObject();
    w.Key("bytes_sent");
    w.Uint64(stats.bytes_sent);
    w.Key("body_bytes_uncompressed");
    w.Uint64(stats.body_bytes_uncompressed);
    w.Key("peak_in_flight");
    w.Uint(stats.peak_in_flight);
    w.Key("refused_429");
    w.Uint64(stats.refused_429);
    w.Key("rate_limited_429");
    w.Uint64(stats.rate_limited_429);
    w.Key("connections_accepted");
    w.Uint64(stats.connections_accepted);
    w.Key("incidents_served");
    w.Uint64(stats.incidents_served);
    w.Key("account_settings_requests");
    w.Uint64(stats.account_settings_requests);
    w.EndObject();
    return {out.GetString(), out.GetSize()};
}

}  // namespace fake_api
