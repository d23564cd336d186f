#pragma once
// A fast, stable 64-bit content hash (FNV-1a). Stored in the database to skip
// rewriting unchanged rows, so it must never change between versions.

#include <cstdint>
#include <string_view>

namespace isync::util {

class content_hasher {
public:
    void add(std::string_view bytes) noexcept {
        for (unsigned char c : bytes) {
            state_ ^= c;
            state_ *= 0x100000001b3ULL;
        }
        add_separator();
    }
    void add(std::int64_t v) noexcept { add(std::string_view(reinterpret_cast<const char*>(&v), sizeof v)); }
    // Separates fields so ("ab","c") and ("a","bc") hash differently.
    void add_separator() noexcept {
        state_ ^= 0xff;
        state_ *= 0x100000001b3ULL;
    }
    // SQLite stores signed 64-bit integers.
    std::int64_t value() const noexcept { return static_cast<std::int64_t>(state_); }

private:
    std::uint64_t state_ = 0xcbf29ce484222325ULL;
};

inline std::int64_t hash_bytes(std::string_view bytes) noexcept {
    content_hasher h;
    h.add(bytes);
    return h.value();
}

}  // namespace isync::util
