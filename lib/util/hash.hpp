#pragma once
// Stable 64-bit content hashes, stored in the database to skip rewriting
// unchanged rows. hash_bytes may change only with a migration that recomputes
// incidents.content_hash (as schema/003_xxh3_content_hash.sql does);
// content_hasher must never change: its inputs are typed fields that SQL
// cannot recompute.

#include <cstdint>
#include <string_view>

namespace isync::util {

// FNV-1a over a sequence of fields (substance and script hashes; the fields
// are short).
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
// 12% of the daemon's CPU there, XXH3 well under 1%. Defined in hash.cpp, the
// one file that compiles xxHash.
std::int64_t hash_bytes(std::string_view bytes) noexcept;

}  // namespace isync::util
