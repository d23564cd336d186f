#pragma once
// Counters of what the engine did, read by `once`'s summary, `/metrics`
// (ops/metrics_text), the progress file and the tests. Single-threaded: the
// event loop owns them.

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
    std::uint64_t incidents_seen = 0;  // in pages written, the re-reads of page overlaps included
    std::uint64_t incidents_read = 0;  // distinct incidents per slice: what an operator means by "read"
    std::uint64_t incidents_new = 0;
    std::uint64_t incidents_changed = 0;
    std::uint64_t incidents_unchanged = 0;
    std::uint64_t drift_corrections = 0;
    // Page fetches by outcome: first try, after retries, given up / refused.
    std::uint64_t fetches_ok = 0;
    std::uint64_t fetches_retried = 0;
    std::uint64_t fetches_failed = 0;
    // Pair discovery (sync.discover): GET /v1/account-settings by outcome.
    std::uint64_t discoveries_ok = 0;
    std::uint64_t discoveries_failed = 0;
    std::optional<std::int64_t> last_discovery_ms;  // wall clock of the last successful discovery

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
    std::optional<std::int64_t> last_success_ms;  // wall clock of the last successful poll (or committed slice)
    std::optional<std::int64_t> watermark_ms;
    bool auth_failing = false;
    std::optional<std::int64_t> last_error_ms;    // wall clock of the last failed poll
    std::optional<std::int64_t> poll_started_ms;  // while a poll runs or waits for a slot (engine::health() fills it)
};

// A poll in progress: which slice of how many, and how many incidents of the
// API's own count (`paging.count`) have been read. Page-overlap re-reads are
// not counted as read.
struct pair_progress {
    std::int64_t poll_started_ms = 0;
    int slice = 0;                  // 1-based index of the slice being read; 0 before the first
    int slices = 0;                 // slices planned for this poll
    std::int64_t read = 0;          // distinct incidents read this poll
    std::int64_t window_count = 0;  // sum of paging.count of the slices begun so far
};

}  // namespace isync::sync
