#pragma once
// Stable 64-bit content hashes, stored in the database to skip rewriting
// unchanged rows: a change to either function needs a schema migration that
// recomputes the stored values (see schema/003_xxh3_content_hash.sql).

#include <cstdint>
#include <string_view>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace isync::util {

// FNV-1a over a sequence of fields (substance and script hashes): fields are
// short, and the stored substance hashes cannot be recomputed by a migration.
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

// XXH3-64 of an incident's raw JSON (incidents.content_hash). A re-read
// hashes every byte it receives; FNV-1a's byte-at-a-time multiply chain took
// 12% of the daemon's CPU there, XXH3 well under 1%.
inline std::int64_t hash_bytes(std::string_view bytes) noexcept {
    return static_cast<std::int64_t>(XXH3_64bits(bytes.data(), bytes.size()));
}

}  // namespace isync::util
