#include "sync/page_walk.hpp"

#include <algorithm>

namespace isync::sync {

page_walk::page_walk(int take, int max_rewalks) : take_(std::max(1, take)), max_rewalks_(max_rewalks) {}

void page_walk::restart() {
    // `seen_` is kept: the union over walks is what must cover the count, so
    // a server with an unstable order still converges.
    skip_ = 0;
    last_count_.reset();
    walk_requests_ = 0;
}

walk_state page_walk::advance(std::int64_t count, std::size_t items) {
    ++requests_;
    ++walk_requests_;
    max_count_ = std::max(max_count_, count);

    // The server applied any change before it served this page, so this page
    // is already in the new order; what a drop of d can have pushed out of
    // reach are the d places just before this page's start. Read on from there.
    std::int64_t next_skip = skip_ + static_cast<std::int64_t>(items);
    bool stepped_back = false;
    if (last_count_ && count < *last_count_) {
        next_skip = std::max<std::int64_t>(0, skip_ - (*last_count_ - count));
        stepped_back = true;
        ++drift_corrections_;
    } else if (last_count_ && count > *last_count_) {
        ++drift_corrections_;  // counted, though carrying on is the correction
    }
    last_count_ = count;
    skip_ = next_skip;

    const bool walked_to_end = (items == 0 && !stepped_back) || skip_ >= count;
    if (!walked_to_end) {
        // A server that never ends: a walk may take at most twice the pages
        // the largest count implies, plus slack for drift corrections.
        if (walk_requests_ > 2 * (max_count_ / take_ + 1) + 16) {
            state_ = walk_state::failed;
            failure_ = "the server kept returning pages beyond paging.count";
        }
        return state_;
    }
    if (static_cast<std::int64_t>(seen_.size()) >= count) {
        state_ = walk_state::complete;
        return state_;
    }
    // Fewer distinct incidents than counted: some slipped past the offsets.
    if (rewalks_ >= max_rewalks_) {
        state_ = walk_state::failed;
        failure_ = "the result set kept changing while it was paged; the slice will be read again next poll";
        return state_;
    }
    ++rewalks_;
    ++drift_corrections_;
    restart();
    return state_;
}

}  // namespace isync::sync
