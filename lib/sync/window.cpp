#include "sync/window.hpp"

#include <algorithm>

namespace isync::sync {

std::vector<slice> plan_slices(std::optional<std::int64_t> watermark_ms, std::int64_t now_ms,
                               const config::sync_config& sync) {
    const std::int64_t to = now_ms - sync.settle.count();
    const std::int64_t from = watermark_ms ? *watermark_ms - sync.overlap.count() : now_ms - sync.initial_lookback.count();
    std::vector<slice> out;
    const std::int64_t step = std::max<std::int64_t>(1, sync.max_window.count());
    // A watermark already past `to` (clock stepped back) means nothing to read.
    if (watermark_ms && *watermark_ms >= to) return out;
    for (std::int64_t start = from; start < to; start += step) out.push_back({start, std::min(to, start + step)});
    return out;
}

}  // namespace isync::sync
