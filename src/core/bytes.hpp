#pragma once

// Byte scans eight bytes at a time (SWAR) for the short strings of the hot paths: metric names
// and JSON string tokens are 5 to 30 bytes, too short for a libc call or SIMD set-up to pay.
//
// Each mask function returns a word with the high bit set in every byte that matches, plus
// perhaps in bytes above the first match (a borrow in the subtraction moves up): zero exactly
// when no byte matches, and the lowest set bit always marks the first match.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace core::bytes {

static_assert(std::endian::native == std::endian::little, "the first byte is the lowest");

constexpr std::uint64_t repeat(unsigned char c) noexcept { return 0x0101010101010101ULL * c; }
constexpr std::uint64_t high_bits = repeat(0x80);

inline std::uint64_t load(const char* p) noexcept
{
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
}

/// Four bytes at `p`, zero-extended.
inline std::uint64_t load4(const char* p) noexcept
{
    std::uint32_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
}

/// a[0, n) == b[0, n) for n <= 16, inline: at most two overlapping word compares, where memcmp
/// is a call through the PLT for most sizes (names, paths and header values are short).
inline bool equal_short(const char* a, const char* b, std::size_t n) noexcept
{
    if (n >= 8)
        return ((load(a) ^ load(b)) | (load(a + n - 8) ^ load(b + n - 8))) == 0;
    if (n >= 4)
        return ((load4(a) ^ load4(b)) | (load4(a + n - 4) ^ load4(b + n - 4))) == 0;
    for (std::size_t i = 0; i < n; ++i)
        if (a[i] != b[i])
            return false;
    return true;
}

/// Copies n <= 16 bytes from `src` to `dst` inline: at most two overlapping word copies, where
/// memcpy of a size unknown at compile time is a call (names are short).
inline void copy_short(char* dst, const char* src, std::size_t n) noexcept
{
    if (n >= 8) {
        const std::uint64_t head = load(src);
        const std::uint64_t tail = load(src + n - 8);
        std::memcpy(dst, &head, 8);
        std::memcpy(dst + n - 8, &tail, 8);
    } else if (n >= 4) {
        const auto head = static_cast<std::uint32_t>(load4(src));
        const auto tail = static_cast<std::uint32_t>(load4(src + n - 4));
        std::memcpy(dst, &head, 4);
        std::memcpy(dst + n - 4, &tail, 4);
    } else {
        for (std::size_t i = 0; i < n; ++i)
            dst[i] = src[i];
    }
}

/// `v` as it stands in a register: the empty asm keeps GCC from merging the load that produced
/// it with a neighbouring one into one wider load. Such a load cannot be forwarded from two
/// narrower stores just made (a store-forwarding stall of tens of cycles).
template <class T>
[[gnu::always_inline]] inline T opaque(T v) noexcept
{
    asm("" : "+r"(v));
    return v;
}

/// Bytes of `w` equal to `c`.
constexpr std::uint64_t equal_to(std::uint64_t w, unsigned char c) noexcept
{
    const std::uint64_t x = w ^ repeat(c);
    return (x - repeat(1)) & ~x & high_bits;
}

/// Bytes of `w` below `n` (n at most 0x80).
constexpr std::uint64_t below(std::uint64_t w, unsigned char n) noexcept
{
    return (w - repeat(n)) & ~w & high_bits;
}

/// Bytes of `w` at or above 0x80 (exact).
constexpr std::uint64_t non_ascii(std::uint64_t w) noexcept { return w & high_bits; }

/// Whether `word_mask` (as for find_first) flags no byte of `s`, of 4 to 16 bytes: two
/// overlapping words, where find_first goes byte by byte through a string shorter than a word.
template <class WordMask>
bool none_short(std::string_view s, WordMask word_mask) noexcept
{
    const std::size_t n = s.size();
    if (n >= 8)
        return (word_mask(load(s.data())) | word_mask(load(s.data() + n - 8))) == 0;
    return word_mask(load4(s.data()) | load4(s.data() + n - 4) << 32) == 0;
}

/// The index of the first byte of `s` at or after `from` that `word_mask` flags (a word at a
/// time) and `byte_matches` confirms for the tail, or s.size() if none.
template <class WordMask, class ByteMatches>
std::size_t find_first(std::string_view s, std::size_t from, WordMask word_mask, ByteMatches byte_matches) noexcept
{
    std::size_t i = from;
    for (; i + 8 <= s.size(); i += 8)
        if (const std::uint64_t m = word_mask(load(s.data() + i)); m != 0)
            return i + static_cast<std::size_t>(std::countr_zero(m)) / 8;
    for (; i < s.size(); ++i)
        if (byte_matches(static_cast<unsigned char>(s[i])))
            return i;
    return s.size();
}

}  // namespace core::bytes
