#pragma once
// Counters of what the engine did, read by `once`'s summary, the tests and
// (later) the metrics endpoint. Single-threaded: the event loop owns them.

#include <cstdint>
#include <map>

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
    std::uint64_t slices_ok = 0;
    std::uint64_t slices_failed = 0;
};

}  // namespace isync::sync
