#include "sync/window.hpp"

#include <algorithm>

namespace isync::sync {

std::vector<slice> plan_slices(std::optional<std::int64_t> watermark_ms, std::int64_t now_ms,
                               const config::sync_config& sync) {
    const std::int64_t to = now_ms - sync.settle.count();
    const std::int64_t from =
        watermark_ms ? *watermark_ms - sync.overlap.count() : now_ms - sync.initial_lookback.count();
    std::vector<slice> out;
    const std::int64_t step = std::max<std::int64_t>(1, sync.max_window.count());
    // A watermark already past `to` (clock stepped back) means nothing to read.
    if (watermark_ms && *watermark_ms >= to) return out;
    for (std::int64_t start = from; start < to; start += step) out.push_back({start, std::min(to, start + step)});
    return out;
}

std::vector<slice> split_by_time(slice window, std::chrono::milliseconds max_window) {
    std::vector<slice> out;
    const std::int64_t step = std::max<std::int64_t>(1, max_window.count());
    for (std::int64_t start = window.from_ms; start < window.to_ms; start += step)
        out.push_back({start, std::min(window.to_ms, start + step)});
    return out;
}

std::vector<slice> split_by_count(slice window, std::int64_t count, std::int64_t slice_incidents) {
    const std::int64_t span = window.to_ms - window.from_ms;
    if (slice_incidents <= 0 || count <= slice_incidents || span <= 1) return {window};
    const std::int64_t parts = std::min(span, (count + slice_incidents - 1) / slice_incidents);
    std::vector<slice> out;
    out.reserve(static_cast<std::size_t>(parts));
    for (std::int64_t i = 0; i < parts; ++i) {
        // Boundaries by integer division: the parts cover the window exactly.
        const std::int64_t from = window.from_ms + span * i / parts;
        const std::int64_t to = window.from_ms + span * (i + 1) / parts;
        out.push_back({from, to});
    }
    return out;
}

}  // namespace isync::sync
