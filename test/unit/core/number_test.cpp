#include "core/number.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

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
