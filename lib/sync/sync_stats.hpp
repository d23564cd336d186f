#pragma once
// Counters of what the engine did, read by `once`'s summary, the tests and
// (later) the metrics endpoint. Single-threaded: the event loop owns them.

#include <array>
#include <cstdint>
#include <map>
#include <optional>

namespace isync::sync {

struct sync_stats {
    std::uint64_t requests = 0;
    std::map<unsigned, std::uint64_t> responses_by_status;  // HTTP status -> count
    std::uint64_t transport_failures = 0;                   // no HTTP status at all
    std::uint64_t retries = 0;
    std::uint64_t pages = 0;
    std::uint64_t incidents_seen = 0;
    std::uint64_t incidents_new = 0;
    std::uint64_t incidents_changed = 0;
    std::uint64_t incidents_unchanged = 0;
    std::uint64_t drift_corrections = 0;
    // Page fetches by outcome: first try, after retries, given up / refused.
    std::uint64_t fetches_ok = 0;
    std::uint64_t fetches_retried = 0;
    std::uint64_t fetches_failed = 0;

    // Duration of a pair's poll, as a Prometheus histogram.
    static constexpr std::array<double, 9> duration_buckets{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    std::array<std::uint64_t, duration_buckets.size()> duration_counts{};  // cumulative per bucket
    std::uint64_t duration_count = 0;
    double duration_sum = 0;

    void observe_duration(double seconds) {
        for (std::size_t i = 0; i < duration_buckets.size(); ++i)
            if (seconds <= duration_buckets[i]) ++duration_counts[i];
        ++duration_count;
        duration_sum += seconds;
    }
};

// What the engine knows of one pair, for /metrics and /readyz.
struct pair_health {
    std::optional<std::int64_t> last_success_ms;  // wall clock of the last successful poll
    std::optional<std::int64_t> watermark_ms;
    bool auth_failing = false;
};

}  // namespace isync::sync
