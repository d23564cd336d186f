#include "fake_api/sim_options.hpp"

#include "util/duration.hpp"

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
  --ca-out PATH         write the CA certificate (PEM) here
  --port-file PATH      write the bound port here once listening (atomically, via rename)
  --fail-every K        answer 500 to every Kth request
  --rate-limit-every K  answer 429 (Retry-After: 1) to every Kth request
  --truncate-every K    cut every Kth 200 body in half and close
  --malformed-every K   send broken JSON in every Kth 200
  --reset-every K       reset the connection instead of every Kth answer
  --wrong-content-type-every K  send an HTML page instead of every Kth 200
  --delay-ms N          wait N ms before every answer
  --live M              before each request, change M incidents and add M new ones
  --help                this text
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
        } else if (flag == "--ca-out") {
            o.ca_out = value;
        } else if (flag == "--port-file") {
            o.port_file = value;
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

}  // namespace fake_api
