#pragma once
// The one definition of "healthy", shared by `status --check` (the Docker
// HEALTHCHECK), /readyz and `status`'s table. Sans-io: facts in, verdicts out.
// `status` gathers the facts from the database (and the running daemon's
// progress file); /readyz from the engine. Same facts, same rule, same answer.

#include "config/config.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace isync::ops {

// What is known of one pair.
struct pair_facts {
    config::pair pair;
    bool configured = true;                       // false: only the database knows it (removed from the config)
    std::optional<std::int64_t> last_success_ms;  // last committed slice or successful poll
    std::optional<std::int64_t> last_error_ms;
    std::optional<std::int64_t> watermark_ms;
    bool auth_failing = false;
    // Set while a daemon is polling the pair (or has it queued for a
    // concurrency slot): when that poll started.
    std::optional<std::int64_t> poll_started_ms;
};

enum class pair_state {
    ok,            // succeeded recently and is caught up
    backfilling,   // making progress through a window longer than three intervals (first poll or catch-up)
    failing,       // no success within three intervals, or never
    auth_failing,  // the API refuses the token
    removed,       // in the database, not in the configuration: kept, not judged
};

struct pair_verdict {
    config::pair pair;
    pair_state state;
    bool healthy;
    std::string reason;  // one line for people, e.g. "backfill in progress"
};

struct health_policy {
    std::chrono::milliseconds interval;  // sync.interval; "recent" is within three of them
    std::chrono::milliseconds settle{0};
    bool discover = false;  // sync.discover: a pair no longer polled left discovery's list, not only the file
};

struct health_verdict {
    bool healthy = true;              // every configured pair is ok or backfilling
    bool backfilling = false;         // at least one configured pair is backfilling
    std::string summary;              // "ready", "backfill in progress" or "not ready: ..."
    std::vector<pair_verdict> pairs;  // in the order of `facts`
};

// Judges one pair at `now_ms`.
pair_verdict judge_pair(const pair_facts& facts, std::int64_t now_ms, const health_policy& policy);

// Judges every pair; removed pairs are listed but never make the whole unhealthy.
health_verdict judge_health(const std::vector<pair_facts>& facts, std::int64_t now_ms, const health_policy& policy);

// "ok", "backfilling", "failing", "auth_failing", "removed": the JSON spelling.
const char* state_name(pair_state s);

}  // namespace isync::ops
