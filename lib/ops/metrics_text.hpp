#pragma once
// What /metrics, /healthz and /readyz say. Sans-io: facts in, text out.

#include "config/config.hpp"
#include "ops/health.hpp"
#include "sync/page_source.hpp"
#include "sync/sync_stats.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace isync::ops {

struct metrics_input {
    const sync::sync_stats& stats;
    const std::map<config::pair, sync::pair_health>& pairs;
    std::int64_t now_ms;
    std::optional<std::uint64_t> database_bytes;
    std::optional<std::uint64_t> wal_bytes;
    const std::map<config::pair, sync::pair_progress>& progress;  // pairs polling now
    sync::source_stats source{};                                  // the API connection pool
    const health_verdict* health = nullptr;  // per pair, as /readyz judges it (no samples when null)
    // Sharing a database (PostgreSQL): the pairs another daemon holds; `pairs`
    // are this one's. Null: not shared (no lease samples).
    const std::set<config::pair>* leased_elsewhere = nullptr;
};

// The Prometheus text exposition format (version 0.0.4).
std::string render_metrics(const metrics_input& in);

struct readiness {
    bool ready;
    std::string reason;  // JSON object text, e.g. {"status":"ready",...} or {"status":"not ready","stale":[...],...}
};

// /readyz's answer for a verdict of ops::judge_health (ops/health.hpp): ready
// exactly when `status --check` would exit 0 on the same facts.
readiness render_readiness(const health_verdict& verdict);

}  // namespace isync::ops
