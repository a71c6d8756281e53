#include "core/bytes.hpp"
#include "core/metric.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>

namespace bytes = core::bytes;

TEST_CASE("word scans find the first matching byte, as a byte loop does")
{
    // Random strings over bytes near every threshold, so that borrows between bytes (a match
    // followed by look-alikes) are exercised at every position of a word and in the tail.
    const std::string alphabet{"\x00\x01\x1f\x20\x21\x22\x2e\x2f\x30\x5b\x5c\x5d\x7e\x7f\x80\x81\xfe\xff", 18};
    const auto word = [](std::uint64_t w) {
        return bytes::below(w, 0x21) | bytes::equal_to(w, 0x7f) | bytes::equal_to(w, '\\') | bytes::non_ascii(w);
    };
    const auto byte = [](unsigned char c) { return c < 0x21 || c == 0x7f || c == '\\' || c >= 0x80; };
    std::mt19937 random{42};
    for (int round = 0; round < 20000; ++round) {
        std::string s(random() % 40, 'a');
        for (char& c : s)
            if (random() % 4 == 0)
                c = alphabet[random() % alphabet.size()];
        const std::size_t from = s.empty() ? 0 : random() % (s.size() + 1);
        std::size_t expected = from;
        while (expected < s.size() && !byte(static_cast<unsigned char>(s[expected])))
            ++expected;
        CAPTURE(s);
        CAPTURE(from);
        REQUIRE(bytes::find_first(s, from, word, byte) == expected);
    }
}

TEST_CASE("equal_short compares every byte of 0 to 16, as memcmp does")
{
    const std::string a = "abcdefghijklmnop";
    for (std::size_t n = 0; n <= 16; ++n) {
        CAPTURE(n);
        std::string b = a;
        CHECK(bytes::equal_short(a.data(), b.data(), n));
        for (std::size_t at = 0; at < n; ++at) {
            CAPTURE(at);
            b = a;
            b[at] = static_cast<char>(b[at] ^ 0x80);
            CHECK_FALSE(bytes::equal_short(a.data(), b.data(), n));
        }
        // Bytes past n do not count.
        b = a;
        if (n < 16)
            b[n] = '!';
        CHECK(bytes::equal_short(a.data(), b.data(), n));
    }
}

TEST_CASE("copy_short copies exactly 0 to 16 bytes, as memcpy does")
{
    const std::string source = "abcdefghijklmnop";
    for (std::size_t n = 0; n <= 16; ++n) {
        CAPTURE(n);
        std::string target(20, '.');
        bytes::copy_short(target.data() + 2, source.data(), n);
        CHECK(target == ".." + source.substr(0, n) + std::string(18 - n, '.'));
    }
}

TEST_CASE("none_short and the names it checks see every byte of 4 to 16")
{
    const auto slash = [](std::uint64_t w) { return bytes::equal_to(w, '/'); };
    for (std::size_t n = 1; n <= 20; ++n) {
        const std::string plain(n, 'n');
        CAPTURE(n);
        if (n >= 4 && n <= 16)
            CHECK(bytes::none_short(plain, slash));
        CHECK(core::valid_utf8_name(plain));
        for (char bad : {'/', ' ', '\x00', '\x1f', '\x7f', '\t'}) {
            for (std::size_t at = 0; at < n; ++at) {
                CAPTURE(at);
                CAPTURE(static_cast<int>(bad));
                std::string name = plain;
                name[at] = bad;
                if (n >= 4 && n <= 16)
                    CHECK(bytes::none_short(name, slash) == (bad != '/'));
                CHECK_FALSE(core::valid_utf8_name(name));
            }
        }
        // Non-ASCII bytes are left to the UTF-8 check.
        CHECK(core::valid_utf8_name(plain + "\xc3\xa9"));
    }
}
