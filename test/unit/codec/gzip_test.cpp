#include "codec/gzip.hpp"

#include <doctest/doctest.h>

#include <string>

using codec::Gzip;
using core::Errc;

namespace {

std::string text(std::size_t n)
{
    std::string s;
    for (std::size_t i = 0; s.size() < n; ++i)
        s += "metric" + std::to_string(i % 97) + ",";
    s.resize(n);
    return s;
}

}  // namespace

TEST_CASE("gzip round-trips")
{
    Gzip gz;
    std::string packed;
    std::string unpacked;
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1000}, std::size_t{100000}}) {
        CAPTURE(n);
        const std::string in = text(n);
        gz.compress(in, packed);
        REQUIRE(packed.size() >= 18);  // header and trailer
        CHECK(static_cast<unsigned char>(packed[0]) == 0x1f);
        CHECK(static_cast<unsigned char>(packed[1]) == 0x8b);
        REQUIRE(gz.decompress(packed, unpacked, n));
        CHECK(unpacked == in);
    }
    SUBCASE("with any level")
    {
        Gzip best{12};
        const std::string in = text(5000);
        best.compress(in, packed);
        REQUIRE(gz.decompress(packed, unpacked, 5000));
        CHECK(unpacked == in);
    }
}

TEST_CASE("output over the limit is body_too_large, whatever ISIZE claims")
{
    Gzip gz;
    std::string packed;
    std::string out;
    const std::string zeros(10 << 20, '\0');  // a small bomb: 10 MiB of zeros
    gz.compress(zeros, packed);
    CHECK(packed.size() < 100000);
    CHECK(gz.decompress(packed, out, (10 << 20) - 1).error() == Errc::body_too_large);
    CHECK(gz.decompress(packed, out, 0).error() == Errc::body_too_large);
    REQUIRE(gz.decompress(packed, out, 10 << 20));
    CHECK(out.size() == zeros.size());

    SUBCASE("a forged ISIZE changes nothing")
    {
        std::string forged = packed;
        forged[forged.size() - 4] = 1;  // claims 1 byte (mod 2^32)
        forged[forged.size() - 3] = 0;
        forged[forged.size() - 2] = 0;
        forged[forged.size() - 1] = 0;
        CHECK(gz.decompress(forged, out, 1000).error() == Errc::body_too_large);
        CHECK(gz.decompress(forged, out, 20 << 20).error() == Errc::bad_encoding);
    }
}

TEST_CASE("invalid gzip is bad_encoding")
{
    Gzip gz;
    std::string packed;
    std::string out;
    gz.compress(text(1000), packed);
    // Room to spare: libdeflate reads zero bits past a truncated end, so a stream cut short
    // right at the limit may first run out of output space (body_too_large).
    constexpr std::size_t limit = 4096;
    CHECK(gz.decompress("", out, limit).error() == Errc::bad_encoding);
    CHECK(gz.decompress("not gzip at all", out, limit).error() == Errc::bad_encoding);
    CHECK(gz.decompress(std::string_view{packed}.substr(0, packed.size() - 1), out, limit).error() == Errc::bad_encoding);
    CHECK(gz.decompress(std::string_view{packed}.substr(0, 10), out, limit).error() == Errc::bad_encoding);
    CHECK(gz.decompress(packed + "x", out, limit).error() == Errc::bad_encoding);
    std::string corrupt = packed;
    corrupt[packed.size() - 6] ^= 1;  // CRC32
    CHECK(gz.decompress(corrupt, out, limit).error() == Errc::bad_encoding);
}

TEST_CASE("concatenated members decompress as one stream")
{
    Gzip gz;
    std::string a;
    std::string b;
    std::string out;
    gz.compress("hello, ", a);
    gz.compress("world", b);
    REQUIRE(gz.decompress(a + b, out, 100));
    CHECK(out == "hello, world");
    CHECK(gz.decompress(a + b, out, 11).error() == Errc::body_too_large);
    CHECK(gz.decompress(a + b.substr(0, 5), out, 100).error() == Errc::bad_encoding);
}
