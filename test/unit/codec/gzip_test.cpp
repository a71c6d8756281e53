#include "codec/gzip.hpp"

#include <doctest/doctest.h>
#include <libdeflate.h>

#include <cstdlib>
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

namespace {

int deflate_allocations = 0;
int deflate_frees = 0;

void* counting_malloc(std::size_t n)
{
    ++deflate_allocations;
    return std::malloc(n);
}

void counting_free(void* p)
{
    if (p != nullptr)
        ++deflate_frees;
    std::free(p);
}

}  // namespace

TEST_CASE("the compressor and decompressor exist from first use until release")
{
    libdeflate_set_memory_allocator(counting_malloc, counting_free);
    deflate_allocations = deflate_frees = 0;
    {
        const std::string in = text(3000);
        std::string first;
        std::string again;
        std::string out;
        Gzip gz;
        CHECK(deflate_allocations == 0);
        gz.compress(in, first);
        gz.compress(in, first);
        CHECK(deflate_allocations == 1);  // the compressor, kept between calls
        gz.release();
        CHECK(deflate_frees == 1);
        gz.compress(in, again);
        CHECK(again == first);  // a new compressor compresses alike
        REQUIRE(gz.decompress(again, out, in.size()));
        CHECK(out == in);
        CHECK(deflate_allocations == 3);  // the compressor again, then the decompressor
        gz.release();
        CHECK(deflate_frees == 3);
        gz.release();  // nothing left to free
        CHECK(deflate_frees == 3);
    }
    CHECK(deflate_frees == 3);  // the destructor found nothing either
    libdeflate_set_memory_allocator(std::malloc, std::free);
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
