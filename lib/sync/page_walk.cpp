#include "sync/page_walk.hpp"

#include <algorithm>

namespace isync::sync {
namespace {
constexpr int max_misses_in_a_row = 8;
}

page_walk::page_walk(int take, int max_rewalks, int overlap)
    : take_(std::max(1, take)), max_rewalks_(max_rewalks), overlap_(std::clamp(overlap, 0, std::max(0, take_ - 1))) {}

void page_walk::restart() {
    // `seen_` is kept: the union over walks is what must cover the count.
    next_skip_ = 0;
    frontier_ = 0;
    anchors_.clear();
    last_count_.reset();
    misses_in_a_row_ = 0;
    walk_requests_ = 0;
}

std::optional<std::size_t> page_walk::last_anchor_in_page() const {
    for (std::size_t j = page_ids_.size(); j-- > 0;)
        if (std::find(anchors_.begin(), anchors_.end(), page_ids_[j]) != anchors_.end()) return j;
    return std::nullopt;
}

walk_state page_walk::finish_or_rewalk(std::int64_t count) {
    if (static_cast<std::int64_t>(seen_.size()) >= count) return state_ = walk_state::complete;
    // Fewer distinct incidents than counted: some arrived behind our offset,
    // or the order is not stable. Read the slice again.
    if (rewalks_ >= max_rewalks_) {
        failure_ =
            "the result set kept changing while it was paged (fewer distinct incidents read than "
            "paging.count); the slice will be read again next poll";
        return state_ = walk_state::failed;
    }
    ++rewalks_;
    ++drift_corrections_;
    restart();
    return state_;
}

walk_state page_walk::advance(std::int64_t count) {
    ++requests_;
    // A server that never ends: the budget is fixed by the count when the
    // walk began, so a count that keeps growing cannot stretch it.
    if (++walk_requests_ == 1) walk_budget_ = 4 * (count / std::max(1, take_ - overlap_) + 1) + 32;
    for (std::size_t id : page_ids_) seen_.insert(id);
    const std::int64_t skip = next_skip_;
    const auto n = static_cast<std::int64_t>(page_ids_.size());
    const std::optional<std::int64_t> previous_count = last_count_;
    last_count_ = count;

    std::int64_t new_items = n;
    // With no overlap (take 1) a page cannot hold an anchor: count-only walk.
    if (!anchors_.empty() && overlap_ > 0) {
        const auto j = last_anchor_in_page();
        if (!j) {
            // Continuity lost: the anchors moved out of this page (or left
            // the window). Look further back, by what the count says left.
            ++drift_corrections_;
            const std::int64_t drop = previous_count ? *previous_count - count : 0;
            const std::int64_t back = drop > 0 ? drop + overlap_ : std::max<std::int64_t>(1, take_ / 2);
            if (++misses_in_a_row_ > max_misses_in_a_row || skip == 0) {
                if (rewalks_ >= max_rewalks_) {
                    failure_ =
                        "lost its place in the result set repeatedly while paging; the slice will be read "
                        "again next poll";
                    return state_ = walk_state::failed;
                }
                ++rewalks_;
                restart();
                return state_;
            }
            next_skip_ = std::max<std::int64_t>(0, skip - back);
            return state_;
        }
        const std::int64_t expected = frontier_ - 1 - skip;  // where the last id read should be
        if (static_cast<std::int64_t>(*j) != expected) ++drift_corrections_;
        new_items = n - static_cast<std::int64_t>(*j) - 1;
    }
    misses_in_a_row_ = 0;
    frontier_ = skip + n;
    if (n > 0) anchors_ = page_ids_;

    // The end: the frontier passed the count, or a short page brought nothing
    // new. A full page of re-reads (after a step back overshot, or arrivals
    // pushed the anchors forward) is not the end: read on from its end.
    if (frontier_ >= count || (new_items <= 0 && n < take_)) return finish_or_rewalk(count);
    if (walk_requests_ > walk_budget_) {
        failure_ = "the server kept returning new pages beyond what paging.count announced";
        return state_ = walk_state::failed;
    }
    next_skip_ = std::max<std::int64_t>(0, frontier_ - overlap_);
    return state_;
}

}  // namespace isync::sync
