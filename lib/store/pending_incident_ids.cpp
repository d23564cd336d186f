#include "store/pending_incident_ids.hpp"

#include "util/hash.hpp"

#include <algorithm>
#include <bit>

namespace isync::store {

pending_incident_ids::pending_incident_ids(std::size_t capacity)
    : capacity_(std::max<std::size_t>(capacity, 1)), mask_(std::bit_ceil(capacity_ * 2) - 1) {
    offsets_.push_back(0);
}

std::size_t pending_incident_ids::slot_of(std::string_view id) const noexcept {
    return static_cast<std::size_t>(util::hash_bytes(id)) & mask_;
}

void pending_incident_ids::add(std::string_view id, std::int64_t incident_key) {
    if (slots_.empty()) slots_.assign(mask_ + 1, 0);  // allocated when first used
    std::size_t s = slot_of(id);
    while (slots_[s] != 0) s = (s + 1) & mask_;
    slots_[s] = static_cast<std::uint32_t>(keys_.size() + 1);
    ids_.append(id);
    offsets_.push_back(static_cast<std::uint32_t>(ids_.size()));
    keys_.push_back(incident_key);
}

std::int64_t pending_incident_ids::find(std::string_view id) const noexcept {
    if (keys_.empty()) return no_key;
    for (std::size_t s = slot_of(id); slots_[s] != 0; s = (s + 1) & mask_) {
        const std::uint32_t entry = slots_[s] - 1;
        if (id_at(entry) == id) return keys_[entry];
    }
    return no_key;
}

void pending_incident_ids::sort_by_id(std::vector<std::uint32_t>& order) const {
    std::sort(order.begin(), order.end(), [this](std::uint32_t a, std::uint32_t b) { return id_at(a) < id_at(b); });
}

void pending_incident_ids::clear() noexcept {
    if (keys_.empty()) return;
    std::fill(slots_.begin(), slots_.end(), 0);
    ids_.clear();
    offsets_.resize(1);
    keys_.clear();
}

}  // namespace isync::store
