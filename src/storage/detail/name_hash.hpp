#pragma once

// The hash of a metric name in MemoryStorage: picks the shard (low bits) and the home slot in
// the shard's table (high bits, see EntryTable::home). Not std::hash<std::string_view>:
// libstdc++'s _Hash_bytes runs a byte loop for the tail and costs ~8 ns for a short name, a
// few percent of a whole small request; names are mostly 4 to 24 bytes, and a name of up to 16
// bytes takes two overlapping loads and two multiplications here.
//
// Seeded per store (random at construction): which names collide then differs from process to
// process, so a client cannot precompute names that all land in one shard and one probe run.
// Each multiplication is folded (high half xor low half of the 128-bit product): every input
// bit reaches both ends of the result, which both uses of the hash need.

#include "core/bytes.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace storage::detail {

inline std::uint64_t fold_multiply(std::uint64_t a, std::uint64_t b) noexcept
{
#if defined(__SIZEOF_INT128__)
    __extension__ using Wide = unsigned __int128;  // GCC and clang on 64-bit targets
    const Wide product = static_cast<Wide>(a) * b;
    return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
#else
    // The same fold from four 32-bit products.
    const std::uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32, b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
    const std::uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi, hi_hi = a_hi * b_hi;
    const std::uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xFFFFFFFFu) + lo_hi;
    const std::uint64_t low = (cross << 32) | (lo_lo & 0xFFFFFFFFu);
    const std::uint64_t high = (hi_lo >> 32) + (cross >> 32) + hi_hi;
    return low ^ high;
#endif
}

/// A 64-bit hash of `s` under `seed`. Reads only the bytes of `s`.
inline std::uint64_t name_hash(std::string_view s, std::uint64_t seed) noexcept
{
    // Odd constants with well-spread bits (the golden ratio and two xxHash primes).
    constexpr std::uint64_t k0 = 0x9E3779B97F4A7C15ULL;
    constexpr std::uint64_t k1 = 0xC2B2AE3D27D4EB4FULL;
    constexpr std::uint64_t k2 = 0x165667B19E3779F9ULL;
    const char* p = s.data();
    std::size_t n = s.size();
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    if (n > 16) {
        // Sixteen bytes per round; the last (possibly overlapping) sixteen go to the final mix.
        for (; n > 16; p += 16, n -= 16)
            seed = fold_multiply(core::bytes::load(p) ^ k1, core::bytes::load(p + 8) ^ seed);
        a = core::bytes::load(p + n - 16);
        b = core::bytes::load(p + n - 8);
    } else if (n >= 8) {
        a = core::bytes::load(p);
        b = core::bytes::load(p + n - 8);
    } else if (n >= 4) {
        a = core::bytes::load4(p) << 32 | core::bytes::load4(p + n - 4);
    } else if (n > 0) {
        a = static_cast<std::uint64_t>(static_cast<unsigned char>(p[0])) << 16 |
            static_cast<std::uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8 |
            static_cast<unsigned char>(p[n - 1]);
    }
    // (a, b, size) identify the name among names of its size class; the size itself separates
    // the classes and the overlapping loads within one.
    const std::uint64_t mixed = fold_multiply(a ^ seed ^ k1, b ^ seed ^ k2);
    return fold_multiply(mixed ^ k0, static_cast<std::uint64_t>(s.size()) ^ k1);
}

}  // namespace storage::detail
