#pragma once
// Walking one slice page by page with skip/take while the result set may
// change underneath. Sans-io: the caller fetches, this decides what next.
//
// The API's sort order is undocumented and offsets shift when incidents
// enter or leave the window while we read. The defence, in order:
//  1. When `paging.count` drops by d between pages, incidents before our
//     offset may have left and shifted the rest towards us, so the d places
//     before the page just read were never seen: the next page starts d
//     places before that page's start (re-reading is harmless: upserts are
//     idempotent).
//  2. When it grows, carry on: insertions only push unread items later.
//  3. Before the last page may move the watermark, every id counted must
//     have been seen: if fewer distinct ids were read than the final count,
//     something slipped past (e.g. one left and one arrived between two
//     pages, leaving the count unchanged) and the slice is walked again;
//     ids seen by earlier walks still count.
//  4. After `max_rewalks` walks that never held still, the slice fails; its
//     watermark stays and the next poll tries again.

#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_set>

namespace isync::sync {

struct page_request {
    std::int64_t skip;
    int take;
};

enum class walk_state {
    fetching,   // call next() and fetch that page
    complete,   // every incident of the slice was read: commit with the watermark
    failed,     // the result set never held still, or the server never ended
};

class page_walk {
public:
    explicit page_walk(int take, int max_rewalks = 3);

    // The page to fetch next (only in walk_state::fetching).
    page_request next() const { return {skip_, take_}; }

    // Feed the page that answered next(): its paging.count and the ids it held.
    // Returns the state after it. The page's incidents are to be committed
    // whatever the state (with the watermark only when complete).
    template <class IdRange>
    walk_state on_page(std::int64_t count, const IdRange& ids) {
        std::size_t n = 0;
        for (const auto& id : ids) {
            seen_.insert(std::hash<std::string_view>{}(id));
            ++n;
        }
        return advance(count, n);
    }

    walk_state state() const { return state_; }
    std::int64_t drift_corrections() const { return drift_corrections_; }
    int rewalks() const { return rewalks_; }
    std::int64_t requests() const { return requests_; }
    // Why the walk failed (walk_state::failed), for the log and sync_runs.
    std::string_view failure() const { return failure_; }

private:
    walk_state advance(std::int64_t count, std::size_t items);
    void restart();

    int take_;
    int max_rewalks_;
    std::int64_t skip_ = 0;
    std::optional<std::int64_t> last_count_;
    std::unordered_set<std::size_t> seen_;  // hashes of ids read in this walk
    std::int64_t drift_corrections_ = 0;
    int rewalks_ = 0;
    std::int64_t requests_ = 0;
    std::int64_t walk_requests_ = 0;  // requests in the current walk
    std::int64_t max_count_ = 0;
    walk_state state_ = walk_state::fetching;
    std::string_view failure_;
};

}  // namespace isync::sync
