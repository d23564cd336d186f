#pragma once
// Which time windows a pair's poll reads. Sans-io: the clock is a parameter.

#include "config/config.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace isync::sync {

struct slice {
    std::int64_t from_ms;  // inclusive
    std::int64_t to_ms;    // exclusive; the watermark moves here when the slice commits

    bool operator==(const slice&) const = default;
};

// The window is [watermark - overlap, now - settle) — on a pair's first poll
// [now - initial_lookback, now - settle) — split into consecutive slices no
// longer than max_window, oldest first. Empty when the window is empty (e.g.
// the watermark is already at now - settle).
std::vector<slice> plan_slices(std::optional<std::int64_t> watermark_ms, std::int64_t now_ms,
                               const config::sync_config& sync);

// An explicit window (`resync --from --to`) cut into slices no longer than
// max_window, oldest first; empty when from >= to.
std::vector<slice> split_by_time(slice window, std::chrono::milliseconds max_window);

// A window (or part of one) whose first page said it holds `count`
// incidents, split by time into ceil(count / slice_incidents) equal parts,
// oldest first, none shorter than 1 ms. The window itself when it holds at
// most slice_incidents (or cannot be split further). The parts hold about
// slice_incidents each only if incidents are spread evenly; the engine asks
// each part for its own count and splits it again while it holds too many.
std::vector<slice> split_by_count(slice window, std::int64_t count, std::int64_t slice_incidents);

}  // namespace isync::sync
