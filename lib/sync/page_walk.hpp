#pragma once
// Walking one slice page by page with skip/take while the result set may
// change underneath. Sans-io: the caller fetches, this decides what next.
//
// The API's sort order is undocumented, and offsets shift when incidents
// enter or leave the window while we read. Counting alone cannot tell a
// harmless change from one that pushed an unread incident past our offset
// (one leaving and one arriving keeps the count), so the walk anchors on ids:
//  1. Each page after the first starts `overlap` places before the end of
//     the previous one, so it should begin with ids already read (anchors).
//  2. When an anchor is found in the page, everything after it follows in
//     sequence: nothing was skipped, whatever moved before it (items after
//     the anchor are new; items before it are harmless re-reads).
//  3. When no anchor is found, items before our offset left and the rest
//     shifted towards us by more than the overlap: step back by the drop in
//     `paging.count` (or half a page) and look again; after repeated misses,
//     walk the slice again from the start.
//  4. Before the last page may move the watermark, the distinct ids read
//     (over all walks of the slice) must reach the final count; if not (an
//     incident arrived behind our offset, or the server's order is not
//     stable), the slice is walked again, at most `max_rewalks` times, after
//     which it fails: its watermark stays and the next poll tries again.
// So every incident that stays in the window while the slice is read is
// read, as long as the server's order is a stable total order.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace isync::sync {

struct page_request {
    std::int64_t skip;
    int take;
};

enum class walk_state {
    fetching,  // call next() and fetch that page
    complete,  // every incident of the slice was read: commit with the watermark
    failed,    // the result set never held still, or the server never ended
};

class page_walk {
public:
    explicit page_walk(int take, int max_rewalks = 3, int overlap = 2);

    // The page to fetch next (only in walk_state::fetching).
    page_request next() const { return {next_skip_, take_}; }

    // Feed the page that answered next(): its paging.count and the ids it held,
    // in the order served. Returns the state after it. The page's incidents
    // are to be committed whatever the state (with the watermark only when
    // complete).
    template <class IdRange>
    walk_state on_page(std::int64_t count, const IdRange& ids) {
        page_ids_.clear();
        for (const auto& id : ids) page_ids_.push_back(std::hash<std::string_view>{}(id));
        return advance(count);
    }

    walk_state state() const { return state_; }
    std::int64_t drift_corrections() const { return drift_corrections_; }
    int rewalks() const { return rewalks_; }
    std::int64_t requests() const { return requests_; }
    // How far apart the offsets of consecutive full pages are when nothing
    // moves (take minus the overlap): where pages may be fetched ahead.
    std::int64_t step() const { return std::max(1, take_ - overlap_); }
    // Distinct incidents read over all walks of the slice (overlap re-reads
    // and re-walks count once).
    std::int64_t distinct_read() const { return static_cast<std::int64_t>(seen_.size()); }
    // Why the walk failed (walk_state::failed), for the log and sync_runs.
    std::string_view failure() const { return failure_; }

private:
    walk_state advance(std::int64_t count);
    walk_state finish_or_rewalk(std::int64_t count);
    void restart();
    std::optional<std::size_t> last_anchor_in_page() const;

    int take_;
    int max_rewalks_;
    int overlap_;
    std::int64_t next_skip_ = 0;
    std::int64_t frontier_ = 0;          // current-order position just past the last id read in sequence
    std::vector<std::size_t> anchors_;   // ids (hashed) of the last page read in sequence
    std::vector<std::size_t> page_ids_;  // ids of the page being fed
    std::optional<std::int64_t> last_count_;
    std::unordered_set<std::size_t> seen_;  // every id read, over all walks of the slice
    int misses_in_a_row_ = 0;
    std::int64_t drift_corrections_ = 0;
    int rewalks_ = 0;
    std::int64_t requests_ = 0;
    std::int64_t walk_requests_ = 0;
    std::int64_t walk_budget_ = 0;
    walk_state state_ = walk_state::fetching;
    std::string_view failure_;
};

}  // namespace isync::sync
