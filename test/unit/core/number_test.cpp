#include "core/number.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using core::Errc;

namespace {

std::string gauge_text(double v)
{
    char buf[core::max_number_chars];
    return {buf, core::format_gauge(buf, v)};
}

std::string json_text(double v)
{
    char buf[core::max_number_chars];
    return {buf, core::format_json_double(buf, v)};
}

std::string counter_text(std::int64_t v)
{
    char buf[core::max_number_chars];
    return {buf, core::format_counter(buf, v)};
}

bool same_bits(double a, double b) { return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b); }

// The formatters must print exactly what the std::to_chars calls they replaced print.
struct ToCharsComparison {
    long checked = 0;
    long mismatches = 0;

    void operator()(double v)
    {
        if (!std::isfinite(v))
            return;
        ++checked;
        char want[core::max_number_chars];
        char got[core::max_number_chars];
        compare("format_gauge", v, {want, std::to_chars(want, want + sizeof want, v, std::chars_format::fixed).ptr},
            {got, core::format_gauge(got, v)});
        compare("format_json_double", v, {want, std::to_chars(want, want + sizeof want, v).ptr},
            {got, core::format_json_double(got, v)});
    }

    void compare(const char* what, double v, std::string_view want, std::string_view got)
    {
        if (want == got)
            return;
        // Report the first few only: one CHECK per value would be slow for millions of values.
        if (++mismatches <= 10)
            std::printf("%s(0x%016llx): std::to_chars \"%.*s\", ours \"%.*s\"\n", what,
                static_cast<unsigned long long>(std::bit_cast<std::uint64_t>(v)), static_cast<int>(want.size()),
                want.data(), static_cast<int>(got.size()), got.data());
    }
};

double from_bits(std::uint64_t bits) { return std::bit_cast<double>(bits); }

double next_up(double v) { return std::nextafter(v, std::numeric_limits<double>::infinity()); }

double next_down(double v) { return std::nextafter(v, -std::numeric_limits<double>::infinity()); }

}  // namespace

TEST_CASE("gauges print as the shortest fixed decimal that round-trips")
{
    CHECK(gauge_text(123456.7) == "123456.7");
    CHECK(gauge_text(1234) == "1234");
    CHECK(gauge_text(0.000001) == "0.000001");
    CHECK(gauge_text(0.1) == "0.1");
    CHECK(gauge_text(1e-7) == "0.0000001");
    CHECK(gauge_text(1e21) == "1000000000000000000000");
    CHECK(gauge_text(-2.5) == "-2.5");
    CHECK(gauge_text(0.0) == "0");
    CHECK(gauge_text(-0.0) == "-0");
}

TEST_CASE("the longest gauges fit max_number_chars")
{
    const double denorm_min = std::numeric_limits<double>::denorm_min();
    const double lowest = std::numeric_limits<double>::lowest();
    CHECK(gauge_text(denorm_min).size() <= core::max_number_chars);
    CHECK(gauge_text(lowest).size() <= core::max_number_chars);
    CHECK(gauge_text(-denorm_min).size() <= core::max_number_chars);
    CHECK(counter_text(std::numeric_limits<std::int64_t>::min()) == "-9223372036854775808");
}

TEST_CASE("gauges round-trip bit-exactly through text and JSON forms")
{
    const double values[] = {0.1, 1e-7, 123456.7, 9007199254740993.0 /* rounds to 2^53 */, 9007199254740994.0,
        std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest(),
        std::numeric_limits<double>::min(), std::numeric_limits<double>::denorm_min(),
        -std::numeric_limits<double>::denorm_min(), 1.0 / 3, -0.0, 0.0, 5e-324, 1.7976931348623157e308};
    for (double v : values) {
        CAPTURE(v);
        auto text = core::parse_gauge(gauge_text(v));
        REQUIRE(text);
        CHECK(same_bits(*text, v));
        auto json = core::parse_gauge(json_text(v));
        REQUIRE(json);
        CHECK(same_bits(*json, v));
    }
}

TEST_CASE("JSON doubles use an exponent when it is shorter")
{
    CHECK(json_text(1e300) == "1e+300");
    CHECK(json_text(1.5) == "1.5");
    CHECK(json_text(100) == "100");
}

TEST_CASE("gauge and JSON formatting match std::to_chars byte for byte")
{
    ToCharsComparison check;
    std::mt19937_64 rng{20240611};

    SUBCASE("special values")
    {
        constexpr auto limits = std::numeric_limits<double>{};
        for (double v : {0.0, limits.max(), limits.lowest(), limits.min(), limits.denorm_min(), limits.epsilon(),
                 123456.789, 3.25, 1e-7, 1e300, 1234.0, 0.1, 0.001, 1e21, 1e22, 1e23, 0x1p53, 0x1p70,
                 9007199254740993.0, 12300000000000001048576.0, 5e-324}) {
            check(v);
            check(-v);
        }
        CHECK(check.checked == 42);
    }
    SUBCASE("random bit patterns")
    {
        while (check.checked < 300'000)
            check(from_bits(rng()));
    }
    SUBCASE("random short decimals")
    {
        // What metrics usually hold: an integer of a few digits over a power of ten.
        for (int i = 0; i < 200'000; ++i) {
            const int digits = 1 + static_cast<int>(rng() % 17);
            const auto mantissa = static_cast<double>(rng() % static_cast<std::uint64_t>(std::pow(10.0, digits)));
            const int scale = static_cast<int>(rng() % 24) - 4;
            const double v = scale >= 0 ? mantissa / std::pow(10.0, scale) : mantissa * std::pow(10.0, -scale);
            check(rng() % 2 ? v : -v);
        }
    }
    SUBCASE("integers up to 2^60")
    {
        for (int bits = 1; bits <= 60; ++bits)
            for (int i = 0; i < 1'000; ++i) {
                const std::uint64_t n = rng() >> (64 - bits);
                check(static_cast<double>(n));
            }
        for (std::uint64_t n = 0; n < 20'000; ++n)
            check(static_cast<double>(n));
    }
    SUBCASE("subnormals")
    {
        for (int i = 0; i < 20'000; ++i)
            check(from_bits(rng() % 0x0010'0000'0000'0000));
        for (std::uint64_t bits = 1; bits < 1'000; ++bits)
            check(from_bits(bits));
        check(next_down(std::numeric_limits<double>::min()));
    }
    SUBCASE("powers of two and their neighbours over the whole exponent range")
    {
        for (int e = -1074; e <= 1023; ++e) {
            const double v = std::ldexp(1.0, e);
            check(v);
            check(next_up(v));
            check(next_down(v));
            check(-v);
        }
    }
    SUBCASE("powers of ten and their neighbours, where the notation switches")
    {
        for (int k = -330; k <= 310; ++k) {
            char text[16];
            std::snprintf(text, sizeof text, "1e%d", k);
            double v = 0;
            std::from_chars(text, text + std::char_traits<char>::length(text), v);
            for (double scaled : {v, v * 1.5, v * 9.99}) {
                check(scaled);
                check(next_up(scaled));
                check(next_down(scaled));
                check(next_up(next_up(scaled)));
                check(next_down(next_down(scaled)));
            }
        }
    }
    INFO("values compared: ", check.checked);
    CHECK(check.mismatches == 0);
}

TEST_CASE("counters print as std::to_chars prints them")
{
    std::vector<std::int64_t> values{0, 1, -1, 9, 10, 99, 100, -100, std::numeric_limits<std::int64_t>::max(),
                                     std::numeric_limits<std::int64_t>::min(),
                                     std::numeric_limits<std::int64_t>::min() + 1};
    // Every power of ten and its neighbours, both signs (digit counts change there).
    for (std::int64_t p = 1; p <= std::numeric_limits<std::int64_t>::max() / 10; p *= 10)
        for (std::int64_t v : {p - 1, p, p + 1, 10 * p - 1, 10 * p})
            values.insert(values.end(), {v, -v});
    std::mt19937_64 random{7};
    for (int i = 0; i < 100000; ++i)
        values.push_back(static_cast<std::int64_t>(random() >> (random() % 64)) * (i % 2 == 0 ? 1 : -1));
    for (std::int64_t v : values) {
        char expected[32];
        const auto end = std::to_chars(expected, expected + sizeof expected, v).ptr;
        REQUIRE(counter_text(v) == std::string_view(expected, static_cast<std::size_t>(end - expected)));
    }
}

TEST_CASE("parse_gauge accepts what Go's ParseFloat accepts for finite decimals")
{
    CHECK(*core::parse_gauge("1.5") == 1.5);
    CHECK(*core::parse_gauge("+1.5") == 1.5);
    CHECK(*core::parse_gauge("-1.5") == -1.5);
    CHECK(*core::parse_gauge("1.") == 1.0);
    CHECK(*core::parse_gauge(".5") == 0.5);
    CHECK(*core::parse_gauge("1e3") == 1000.0);
    CHECK(*core::parse_gauge("1E-3") == 0.001);
    CHECK(*core::parse_gauge("1.e2") == 100.0);
    CHECK(*core::parse_gauge("007") == 7.0);
    CHECK(*core::parse_gauge("1e+2") == 100.0);
    CHECK(*core::parse_gauge("123456.7") == 123456.7);

    SUBCASE("underflow rounds to a signed zero, as in Go")
    {
        CHECK(same_bits(*core::parse_gauge("1e-400"), 0.0));
        CHECK(same_bits(*core::parse_gauge("-1e-400"), -0.0));
        CHECK(same_bits(*core::parse_gauge("0.0000000001e-99999999999999999999"), 0.0));
        CHECK(*core::parse_gauge("4.9406564584124654e-324") == std::numeric_limits<double>::denorm_min());
    }
    SUBCASE("zero with any exponent is zero")
    {
        CHECK(*core::parse_gauge("0e999999") == 0.0);
        CHECK(*core::parse_gauge("0.000e-999999") == 0.0);
    }
}

TEST_CASE("parse_gauge rejects non-finite values as non_finite")
{
    for (const char* s : {"inf", "+Inf", "-inf", "Infinity", "-INFINITY", "NaN", "nan", "1e309", "-1e309",
                          "1.7976931348623159e308", "1e99999999999999999999", "123456789e999"}) {
        CAPTURE(s);
        CHECK(core::parse_gauge(s).error() == Errc::non_finite);
    }
}

TEST_CASE("parse_gauge rejects malformed text as bad_value")
{
    for (const char* s : {"", " 1", "1 ", "+", "-", ".", "e5", "1e", "1e+", "1.5.5", "0x10", "0x1p3", "1_000",
                          "--1", "+-1", "1,5", "abc", "infx", "1f", "\xff"}) {
        CAPTURE(s);
        CHECK(core::parse_gauge(s).error() == Errc::bad_value);
    }
    CHECK(core::parse_gauge(std::string_view{"1\0", 2}).error() == Errc::bad_value);
}

TEST_CASE("parse_counter accepts a signed decimal int64")
{
    CHECK(*core::parse_counter("0") == 0);
    CHECK(*core::parse_counter("+5") == 5);
    CHECK(*core::parse_counter("-5") == -5);
    CHECK(*core::parse_counter("007") == 7);
    CHECK(*core::parse_counter("9223372036854775807") == std::numeric_limits<std::int64_t>::max());
    CHECK(*core::parse_counter("-9223372036854775808") == std::numeric_limits<std::int64_t>::min());
}

TEST_CASE("parse_counter rejects anything else as bad_value")
{
    for (const char* s : {"", "+", "-", "1.0", "1e3", " 1", "1 ", "+-1", "-+1", "--1", "0x10",
                          "9223372036854775808", "-9223372036854775809", "99999999999999999999999", "1_0"}) {
        CAPTURE(s);
        CHECK(core::parse_counter(s).error() == Errc::bad_value);
    }
}

TEST_CASE("add_counter refuses to overflow")
{
    constexpr auto max = std::numeric_limits<std::int64_t>::max();
    constexpr auto min = std::numeric_limits<std::int64_t>::min();
    CHECK(*core::add_counter(2, 3) == 5);
    CHECK(*core::add_counter(max, 0) == max);
    CHECK(*core::add_counter(max, min) == -1);
    CHECK(core::add_counter(max, 1).error() == Errc::counter_overflow);
    CHECK(core::add_counter(min, -1).error() == Errc::counter_overflow);
}
