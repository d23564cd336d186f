#include "ops/health.hpp"

#include "util/timestamp.hpp"

#include <fmt/format.h>

namespace isync::ops {

const char* state_name(pair_state s) {
    switch (s) {
        case pair_state::ok:
            return "ok";
        case pair_state::backfilling:
            return "backfilling";
        case pair_state::failing:
            return "failing";
        case pair_state::auth_failing:
            return "auth_failing";
        case pair_state::removed:
            return "removed";
    }
    return "failing";
}

pair_verdict judge_pair(const pair_facts& f, std::int64_t now_ms, const health_policy& policy) {
    const std::int64_t recent_ms = 3 * policy.interval.count();
    auto verdict = [&](pair_state s, bool healthy, std::string reason) {
        return pair_verdict{f.pair, s, healthy, std::move(reason)};
    };
    if (!f.configured)
        return verdict(pair_state::removed, true,
                       policy.discover ? "no longer polled (not in sync.pairs, and discovery does not select it); "
                                         "its data is kept"
                                       : "removed from the configuration; its data is kept");
    if (f.auth_failing) return verdict(pair_state::auth_failing, false, "the API refuses the token");

    const bool recent_success = f.last_success_ms && now_ms - *f.last_success_ms <= recent_ms;
    // Behind: the watermark trails the newest window by more than three
    // intervals, which only a backfill (first poll, or after downtime) does.
    const bool behind = !f.watermark_ms || now_ms - policy.settle.count() - *f.watermark_ms > recent_ms;
    // A poll running now that has not failed since it started.
    const bool in_progress = f.poll_started_ms && (!f.last_error_ms || *f.last_error_ms < *f.poll_started_ms);

    if (recent_success && !behind) return verdict(pair_state::ok, true, "synced");
    if (recent_success || in_progress)
        return verdict(pair_state::backfilling, true,
                       f.last_success_ms ? "backfill in progress" : "first backfill in progress");
    if (!f.last_success_ms)
        return verdict(pair_state::failing, false,
                       f.last_error_ms
                           ? fmt::format("never synced; last error at {}", util::format_iso8601_ms(*f.last_error_ms))
                           : std::string("never synced"));
    return verdict(
        pair_state::failing, false,
        fmt::format("no success within three intervals (last at {})", util::format_iso8601_ms(*f.last_success_ms)));
}

health_verdict judge_health(const std::vector<pair_facts>& facts, std::int64_t now_ms, const health_policy& policy) {
    health_verdict out;
    std::string failing;
    for (const auto& f : facts) {
        auto v = judge_pair(f, now_ms, policy);
        if (!v.healthy) {
            out.healthy = false;
            failing += fmt::format("{}{}/{} {}", failing.empty() ? "" : "; ", v.pair.app_id, v.pair.tld, v.reason);
        }
        if (v.state == pair_state::backfilling) out.backfilling = true;
        out.pairs.push_back(std::move(v));
    }
    out.summary = !out.healthy ? "not ready: " + failing : out.backfilling ? "backfill in progress" : "ready";
    return out;
}

}  // namespace isync::ops
