#pragma once
// Deterministic randomness for the fake API. Every incident draws from its own
// stream, seeded by (dataset seed, incident index), so any incident can be
// regenerated alone without replaying the ones before it.

#include <cstddef>
#include <cstdint>
#include <span>

namespace fake_api {

// SplitMix64's finalizer: a fast, well-mixed 64-bit hash.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// A hash of several values; order matters.
constexpr std::uint64_t hash_of(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0) noexcept {
    return mix64(mix64(mix64(a) ^ b) ^ c);
}

// A small PRNG (SplitMix64 stream).
class rng {
    __extension__ using uint128 = unsigned __int128;  // GCC/Clang builtin; __extension__ keeps -Wpedantic quiet

public:
    explicit constexpr rng(std::uint64_t seed) noexcept : state_(seed) {}

    constexpr std::uint64_t next() noexcept {
        state_ += 0x9e3779b97f4a7c15ull;
        std::uint64_t z = state_;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }

    // Uniform in [0, n); 0 when n == 0. Lemire's multiply-shift: no modulo bias worth caring about here.
    constexpr std::uint64_t below(std::uint64_t n) noexcept {
        return static_cast<std::uint64_t>((static_cast<uint128>(next()) * n) >> 64);
    }

    // Uniform in [lo, hi); lo when the range is empty.
    constexpr std::int64_t between(std::int64_t lo, std::int64_t hi) noexcept {
        return hi <= lo ? lo : lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo)));
    }

    // True with probability per_mille / 1000.
    constexpr bool chance(unsigned per_mille) noexcept { return below(1000) < per_mille; }

    template <class T>
    constexpr const T& pick(std::span<const T> items) noexcept {
        return items[below(items.size())];
    }

private:
    std::uint64_t state_;
};

// A keyed bijection on 64-bit integers: incident index -> the random-looking
// low 64 bits of its id. Being invertible, an id maps back to its index
// without a lookup table (1M incidents would need ~40 MB for one).
class id_permutation {
public:
    explicit constexpr id_permutation(std::uint64_t key) noexcept : key_(mix64(key)) {}

    constexpr std::uint64_t forward(std::uint64_t x) const noexcept {
        x ^= key_;
        x *= m1;
        x ^= x >> 31;
        x *= m2;
        x ^= x >> 29;
        return x;
    }

    constexpr std::uint64_t inverse(std::uint64_t y) const noexcept {
        y = undo_xorshift(y, 29);
        y *= inverse_of(m2);
        y = undo_xorshift(y, 31);
        y *= inverse_of(m1);
        return y ^ key_;
    }

private:
    static constexpr std::uint64_t m1 = 0xd6e8feb86659fd93ull;
    static constexpr std::uint64_t m2 = 0xa0761d6478bd642full;

    static constexpr std::uint64_t undo_xorshift(std::uint64_t y, unsigned shift) noexcept {
        std::uint64_t x = y;
        for (unsigned done = shift; done < 64; done += shift) x = y ^ (x >> shift);
        return x;
    }

    // Multiplicative inverse modulo 2^64 of an odd number (Newton's iteration).
    static constexpr std::uint64_t inverse_of(std::uint64_t a) noexcept {
        std::uint64_t x = a;
        for (int i = 0; i < 5; ++i) x *= 2 - a * x;
        return x;
    }

    std::uint64_t key_;
};

}  // namespace fake_api
