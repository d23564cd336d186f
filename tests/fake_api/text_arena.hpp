#pragma once
// Append-only storage for many small texts (the JSON of a million incidents).
// One heap block per 4 MiB chunk instead of one std::string per text: no
// per-text allocation overhead and no reallocation copies while generating.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace fake_api {

class text_arena {
public:
    // Where a text lives: chunk and offset packed in 64 bits.
    using ref = std::uint64_t;

    // Copies `first` then `second` in, contiguously; returns where they went.
    // Texts larger than a chunk are refused.
    ref append(std::string_view first, std::string_view second = {}) {
        const std::size_t size = first.size() + second.size();
        if (size > chunk_size) throw std::length_error("text_arena: text larger than a chunk");
        if (chunks_.empty() || used_ + size > chunk_size) {
            chunks_.push_back(std::make_unique_for_overwrite<char[]>(chunk_size));
            used_ = 0;
        }
        const ref where = (static_cast<ref>(chunks_.size() - 1) << 32) | used_;
        char* out = chunks_.back().get() + used_;
        if (!first.empty()) std::memcpy(out, first.data(), first.size());
        if (!second.empty()) std::memcpy(out + first.size(), second.data(), second.size());
        used_ += size;
        return where;
    }

    // Takes over `other`'s texts (no copying); returns what to add to the
    // chunk index (the high 32 bits) of every ref `other` handed out.
    ref absorb(text_arena&& other) {
        const ref offset = static_cast<ref>(chunks_.size()) << 32;
        if (other.chunks_.empty()) return offset;
        for (auto& c : other.chunks_) chunks_.push_back(std::move(c));
        used_ = other.used_;  // further appends continue in other's last chunk
        other.chunks_.clear();
        other.used_ = 0;
        return offset;
    }

    std::string_view view(ref where, std::size_t size) const noexcept {
        return {chunks_[where >> 32].get() + (where & 0xffffffffu), size};
    }

    std::size_t capacity_bytes() const noexcept { return chunks_.size() * chunk_size; }

private:
    static constexpr std::size_t chunk_size = 4u << 20;

    std::vector<std::unique_ptr<char[]>> chunks_;
    std::size_t used_ = 0;
};

}  // namespace fake_api
