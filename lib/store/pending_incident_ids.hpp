#pragma once
// The ids of the incidents a transaction has inserted that are not yet in
// incident_ids. The writer adds them there in id order, just before it
// commits (incident_writer::flush_new_ids): random ids inserted one by one
// wrote a 16 KiB page each once that index outgrew SQLite's cache, 18 GB of
// log for a 1M backfill. Until then the writer finds them here.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace isync::store {

class pending_incident_ids {
public:
    // `capacity` new incidents before full() (the writer then flushes early,
    // inside the same transaction). About 44 bytes each once used (the id,
    // its key and offset, two hash slots): 360 KB for the writer's 8,192.
    explicit pending_incident_ids(std::size_t capacity);

    void add(std::string_view id, std::int64_t incident_key);
    // The key added with `id`, or no_key.
    std::int64_t find(std::string_view id) const noexcept;

    // Calls `each(id, incident_key)` for every pending id, in ascending byte order.
    template <class Each>
    void for_each_in_id_order(Each&& each) const {
        std::vector<std::uint32_t> order(keys_.size());
        for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
        sort_by_id(order);
        for (const std::uint32_t i : order) each(id_at(i), keys_[i]);
    }

    bool empty() const noexcept { return keys_.empty(); }
    bool full() const noexcept { return keys_.size() >= capacity_; }
    std::size_t size() const noexcept { return keys_.size(); }
    void clear() noexcept;

    static constexpr std::int64_t no_key = INT64_MIN;

private:
    std::string_view id_at(std::uint32_t i) const noexcept {
        return std::string_view(ids_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
    }
    std::size_t slot_of(std::string_view id) const noexcept;
    void sort_by_id(std::vector<std::uint32_t>& order) const;

    std::size_t capacity_;
    std::size_t mask_;
    std::string ids_;                     // the ids, back to back
    std::vector<std::uint32_t> offsets_;  // id i is ids_[offsets_[i], offsets_[i + 1])
    std::vector<std::int64_t> keys_;
    std::vector<std::uint32_t> slots_;  // open addressing, at most half full: entry + 1, 0 when free
};

}  // namespace isync::store
