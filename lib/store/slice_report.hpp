#pragma once
// What a page and a window slice did: the counts a page's upsert returns, and
// the report the slice's last page (or its failure) turns into a `sync_runs`
// row and a watermark.

#include "config/config.hpp"

#include <cstdint>

namespace isync::store {

struct upsert_counts {
    std::int64_t seen = 0;
    std::int64_t inserted = 0;
    std::int64_t changed = 0;    // row rewritten (content or last_seen moved)
    std::int64_t unchanged = 0;  // identical to the stored row: nothing written

    upsert_counts& operator+=(const upsert_counts& o) {
        seen += o.seen;
        inserted += o.inserted;
        changed += o.changed;
        unchanged += o.unchanged;
        return *this;
    }
};

// What a window slice did, for its `sync_runs` row and the watermark.
struct slice_report {
    config::pair pair;
    std::int64_t from_ms = 0;
    std::int64_t to_ms = 0;  // the watermark moves here on success
    std::int64_t started_ms = 0;
    std::int64_t pages = 0;
    upsert_counts counts;  // totals of the pages committed before this call
    std::int64_t drift_corrections = 0;
    // False for a re-read on request (`resync`): the sync_runs row is
    // written, the pair's watermark and last success are left as they were.
    bool moves_watermark = true;
};

}  // namespace isync::store
