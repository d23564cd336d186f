#pragma once
// Which time windows a pair's poll reads. Sans-io: the clock is a parameter.

#include "config/config.hpp"

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

}  // namespace isync::sync
