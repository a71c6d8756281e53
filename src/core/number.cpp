#include "core/number.hpp"

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include <fmt/format.h>

namespace core {

namespace {

// Why not std::to_chars: libstdc++ 12's Ryu is several times slower (BM_FormatGauge in
// bench/number_bench.cpp), and gauges are formatted on every answer. Why Dragonbox through fmt::detail: it yields the same shortest
// round-trip digits as Ryu (both pick, among the shortest decimals inside the rounding interval,
// the one closest to the exact value, ties to even), and fmt is already linked. fmt's public API
// does not expose those digits alone: "{:e}" without a precision means precision 6 as in printf
// (fmt 9.1 format.h, write(out, T value, specs)), and "{}" lays them out by fmt's own thresholds,
// which we would have to parse back. fmt is pinned by Debian 12 (libfmt-dev 9.1); the tests in
// test/unit/core/number_test.cpp and the number fuzz target compare every output with
// std::to_chars, so a change of fmt's internals shows up there.
//
// The layout below reproduces libstdc++'s __floating_to_chars_shortest (floating_to_chars.cc):
// which notation the plain overload picks and how each one is written.
//
// The helpers are always_inline: GCC 12 at -O3 keeps them as calls, and inlining them into the
// two formatters pays for its ~1 KB of code (bench/number_bench.cpp).

constexpr auto digit_pairs = [] {
    std::array<char, 200> pairs{};
    for (int i = 0; i < 100; ++i) {
        pairs[static_cast<std::size_t>(2 * i)] = static_cast<char>('0' + i / 10);
        pairs[static_cast<std::size_t>(2 * i + 1)] = static_cast<char>('0' + i % 10);
    }
    return pairs;
}();

constexpr auto powers_of_ten = [] {
    std::array<std::uint64_t, 20> powers{};
    std::uint64_t p = 1;
    for (auto& power : powers) {
        power = p;
        p *= 10;
    }
    return powers;
}();

// Every double at or above 2^53 is an integer whose shortest digits may differ from its exact
// value (1e23 is 99999999999999991611392), and libstdc++'s fixed form prints the exact value.
// Below 2^53 a shortest form without a fraction is the exact integer (the rounding interval is
// at most one unit wide), so "digits then zeros" is what libstdc++ prints too.
constexpr double exact_integer_limit = 9007199254740992.0;  // 2^53

[[gnu::always_inline]] inline int count_digits(std::uint64_t n) noexcept
{
    // floor(log10(n)) is bit_width * log10(2) rounded down, or one less.
    const int guess = (static_cast<int>(std::bit_width(n)) * 1233) >> 12;
    return guess + 1 - (n < powers_of_ten[static_cast<std::size_t>(guess)] ? 1 : 0);
}

[[gnu::always_inline]] inline void write_pair(char* p, std::uint32_t pair) noexcept
{
    std::memcpy(p, &digit_pairs[2 * pair], 2);
}

// Exactly eight digits of v < 10^8 at [p, p + 8).
[[gnu::always_inline]] inline void write_eight_digits(char* p, std::uint32_t v) noexcept
{
    const std::uint32_t high = v / 10'000;
    const std::uint32_t low = v % 10'000;
    write_pair(p, high / 100);
    write_pair(p + 2, high % 100);
    write_pair(p + 4, low / 100);
    write_pair(p + 6, low % 100);
}

// The decimal digits of v > 0, ending at `end` (the caller knows how many there are).
[[gnu::always_inline]] inline void write_digits(char* end, std::uint64_t v) noexcept
{
    // Eight digits at a time in 32-bit arithmetic: at most two rounds for 17 digits.
    while (v >= 100'000'000) {
        end -= 8;
        write_eight_digits(end, static_cast<std::uint32_t>(v % 100'000'000));
        v /= 100'000'000;
    }
    auto rest = static_cast<std::uint32_t>(v);
    while (rest >= 100) {
        end -= 2;
        write_pair(end, rest % 100);
        rest /= 100;
    }
    if (rest >= 10)
        write_pair(end - 2, rest);
    else
        end[-1] = static_cast<char>('0' + rest);
}

// A positive finite double as digits * 10^exponent, `count` digits, no trailing zeros.
struct Shortest {
    std::uint64_t digits;
    int exponent;
    int count;
};

constexpr auto exact_powers_of_ten = [] {
    std::array<double, 23> powers{};  // 10^22 is the last power of ten a double holds exactly
    double p = 1;
    for (auto& power : powers) {
        power = p;
        p *= 10;
    }
    return powers;
}();

// Removes the decimal trailing zeros of n > 0 (at most 15: n < 2^50 here), returns how many.
[[gnu::always_inline]] inline int strip_trailing_zeros(std::uint64_t& n) noexcept
{
    int zeros = 0;
    for (int step : {8, 4, 2, 1}) {
        const std::uint64_t divisor = powers_of_ten[static_cast<std::size_t>(step)];
        if (n % divisor == 0) {
            n /= divisor;
            zeros += step;
        }
    }
    return zeros;
}

// Dragonbox is slow for short values in libfmt 9.1 (it rebuilds its 128-bit power of ten from a
// compressed table; bench/number_bench.cpp), while metric values are mostly short decimals (3.25, 123456.789). For
// those, one multiplication finds the digits and one division proves them; anything else
// (17-digit values, |v| < 2^-27, |v| >= 2^50) returns false and goes to Dragonbox.
//
// Why the result is Ryu's: take K with |v| * 10^K < 2^50 (the largest such K, or one less) and
// K <= 22 (so 10^K is exact). The rounding interval of v (decimals that read back as v) is at most
// |v| * 2^-52 wide, under 0.25 once scaled by 10^K. (1) If Ryu's shortest decimal D has at most K
// fraction digits, D * 10^K is an integer within 0.125 of v * 10^K, and the rounded product
// below is within 0.25 of it, so `scaled` is exactly D * 10^K; scaled / 10^K is then the
// correctly rounded quotient of two exact doubles, i.e. what reading D back gives: v. Stripping
// the zeros yields D. (2) If D needs more than K fraction digits, no decimal with at most K
// fraction digits lies in the interval (it would have no more significant digits than D, so D
// would be just below a power of ten and that decimal at or above it, yet the interval is far
// narrower than such a gap), so the check fails. Both rely on round-to-nearest floating point,
// the default that nothing in the server changes.
[[gnu::always_inline]] inline bool short_decimal(double magnitude, Shortest& d) noexcept
{
    const int binary_exponent = static_cast<int>(std::bit_cast<std::uint64_t>(magnitude) >> 52) - 1023;
    if (binary_exponent > 49)
        return false;
    // floor((49 - e) * log10(2)) or one less: 10^k <= 2^(49 - e), so magnitude * 10^k < 2^50.
    const int k = ((49 - binary_exponent) * 1233) >> 12;
    if (k >= static_cast<int>(exact_powers_of_ten.size()))
        return false;
    const double scale = exact_powers_of_ten[static_cast<std::size_t>(k)];
    // Below 2^50 + 1: the signed conversion is one instruction, the unsigned one is not.
    const auto rounded = static_cast<std::int64_t>(magnitude * scale + 0.5);
    if (static_cast<double>(rounded) / scale != magnitude)
        return false;
    auto scaled = static_cast<std::uint64_t>(rounded);
    d.exponent = strip_trailing_zeros(scaled) - k;
    d.digits = scaled;
    d.count = count_digits(scaled);
    return true;
}

[[gnu::always_inline]] inline Shortest shortest(double magnitude) noexcept
{
    Shortest d;
    if (short_decimal(magnitude, d))
        return d;
    const auto decimal = fmt::detail::dragonbox::to_decimal(magnitude);
    return {decimal.significand, decimal.exponent, count_digits(decimal.significand)};
}

// Fixed notation as libstdc++ writes it from Ryu's digits `d` of `magnitude`. Precondition:
// d.exponent < 0 or the value is below 2^53 (see exact_integer_limit). May scribble up to 33 bytes past p with bytes
// that are not part of the result; callers own max_number_chars bytes.
[[gnu::always_inline]] inline char* write_fixed(char* p, Shortest d, double magnitude) noexcept
{
    if (d.exponent >= 0) {
        // Below 2^53 < 10^16: at most 16 digits and 15 zeros.
        write_digits(p + d.count, d.digits);
        p += d.count;
        std::memset(p, '0', 16);
        return p + d.exponent;
    }
    const int fraction = -d.exponent;
    const int whole = d.count - fraction;
    if (whole > 0) {
        // Each part straight to its place. Not all digits and then the fraction moved one place
        // right: reading back bytes just stored two at a time defeats store forwarding (a stall
        // bench/number_bench.cpp shows). The integer part is the double's own: no integer
        // lies strictly between the value and its shortest decimal (it would be shorter still),
        // and the value is below 2^53 here (a fraction), so the conversion is exact.
        const auto integer = static_cast<std::uint64_t>(magnitude);
        const std::uint64_t fraction_digits = d.digits - integer * powers_of_ten[static_cast<std::size_t>(fraction)];
        write_digits(p + whole, integer);
        p += whole;
        *p++ = '.';
        std::memset(p, '0', 16);  // the fraction's leading zeros (it has at most 16 digits)
        write_digits(p + fraction, fraction_digits);  // not 0: the last digit is not a zero
        return p + fraction;
    }
    *p++ = '0';
    *p++ = '.';
    const int zeros = -whole;  // up to 323 for denorm_min
    if (zeros <= 16)
        std::memset(p, '0', 16);
    else
        std::memset(p, '0', static_cast<std::size_t>(zeros));
    p += zeros;
    write_digits(p + d.count, d.digits);
    return p + d.count;
}

// Ryu's scientific form: "1e+300", "1.5e-07" (a point only with several digits, at least two
// exponent digits).
[[gnu::always_inline]] inline char* write_scientific(char* p, Shortest d) noexcept
{
    // Digits one place right, then the first moves left over the point.
    write_digits(p + 1 + d.count, d.digits);
    p[0] = p[1];
    if (d.count > 1) {
        p[1] = '.';
        p += d.count + 1;
    } else {
        p += 1;
    }
    const int exponent = d.exponent + d.count - 1;
    *p++ = 'e';
    *p++ = exponent < 0 ? '-' : '+';
    auto magnitude = static_cast<std::uint32_t>(exponent < 0 ? -exponent : exponent);
    if (magnitude >= 100) {
        *p++ = static_cast<char>('0' + magnitude / 100);
        magnitude %= 100;
    }
    write_pair(p, magnitude);
    return p + 2;
}

}  // namespace

char* format_gauge(char* first, double v) noexcept
{
    // Shortest round-trip digits in fixed notation, as Go's strconv.FormatFloat(v, 'f', -1, 64):
    // -0.0 prints "-0" there too. max_number_chars covers the longest case (denorm_min: 0.000…5,
    // 326 chars).
    const double magnitude = std::fabs(v);
    if (!(magnitude < exact_integer_limit)) [[unlikely]]  // also NaN and infinities
        return std::to_chars(first, first + max_number_chars, v, std::chars_format::fixed).ptr;
    char* p = first;
    if (std::signbit(v))
        *p++ = '-';
    if (magnitude == 0) {
        *p = '0';
        return p + 1;
    }
    return write_fixed(p, shortest(magnitude), magnitude);
}

char* format_json_double(char* first, double v) noexcept
{
    // Shortest round-trip, choosing fixed or exponent form, whichever is shorter ("1e+300");
    // both are valid JSON number literals.
    const double magnitude = std::fabs(v);
    if (!std::isfinite(magnitude)) [[unlikely]]
        return std::to_chars(first, first + max_number_chars, v).ptr;
    char* p = first;
    if (std::signbit(v))
        *p++ = '-';
    if (magnitude == 0) {
        *p = '0';
        return p + 1;
    }
    const Shortest d = shortest(magnitude);
    // libstdc++'s bounds on the exponent of the last digit between which fixed is not longer
    // than scientific (a tie goes to fixed); one digit means no point in scientific.
    int lower = -(d.count + 3);
    int upper = 5;
    if (d.count == 1) {
        ++lower;
        --upper;
    }
    if (d.exponent < lower || d.exponent > upper)
        return write_scientific(p, d);
    if (d.exponent >= 0 && magnitude >= exact_integer_limit) [[unlikely]]
        return std::to_chars(first, first + max_number_chars, v).ptr;  // exact digits, e.g. 2^70
    return write_fixed(p, d, magnitude);
}

char* format_counter(char* first, std::int64_t v) noexcept
{
    // The digit writer above rather than std::to_chars: inline, and two digits per step (a
    // /updates/ answer formats hundreds of counters).
    char* p = first;
    auto magnitude = static_cast<std::uint64_t>(v);
    if (v < 0) {
        *p++ = '-';
        magnitude = 0 - magnitude;  // also right for INT64_MIN
    }
    if (magnitude == 0) {
        *p = '0';
        return p + 1;
    }
    const int count = count_digits(magnitude);
    write_digits(p + count, magnitude);
    return p + count;
}

namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

}  // namespace

Result<double> parse_gauge(std::string_view s) noexcept
{
    // The grammar check comes first because std::from_chars alone accepts "inf", "nan" and hex
    // digits without a prefix, and rejects a leading '+' that Go accepts.
    const char* p = s.data();
    const char* const end = p + s.size();
    bool negative = false;
    if (p != end && (*p == '+' || *p == '-')) {
        negative = *p == '-';
        ++p;
    }
    const char* const number = p;
    // Decimal magnitude of the first significant digit, to tell underflow from overflow below.
    long magnitude = 0;
    bool seen_nonzero = false;
    std::size_t digits = 0;
    for (; p != end && is_digit(*p); ++p, ++digits) {
        if (seen_nonzero)
            ++magnitude;
        else if (*p != '0')
            seen_nonzero = true;
    }
    if (p != end && *p == '.') {
        for (++p; p != end && is_digit(*p); ++p, ++digits)
            if (!seen_nonzero) {
                --magnitude;
                seen_nonzero = *p != '0';
            }
    }
    if (digits == 0) {
        // Go's ParseFloat words for the non-finite values, case-insensitive.
        std::string_view word{p, static_cast<std::size_t>(end - p)};
        auto equal = [word](std::string_view w) {
            if (word.size() != w.size())
                return false;
            for (std::size_t i = 0; i < w.size(); ++i)
                if ((word[i] | 0x20) != w[i])
                    return false;
            return true;
        };
        if (equal("inf") || equal("infinity") || equal("nan"))
            return Errc::non_finite;
        return Errc::bad_value;
    }
    long exponent = 0;
    if (p != end && (*p == 'e' || *p == 'E')) {
        ++p;
        bool exponent_negative = false;
        if (p != end && (*p == '+' || *p == '-')) {
            exponent_negative = *p == '-';
            ++p;
        }
        if (p == end || !is_digit(*p))
            return Errc::bad_value;
        for (; p != end && is_digit(*p); ++p)
            if (exponent < 100'000'000)  // saturate: far beyond any double either way
                exponent = exponent * 10 + (*p - '0');
        if (exponent_negative)
            exponent = -exponent;
    }
    if (p != end)
        return Errc::bad_value;

    double v = 0;
    auto [ptr, ec] = std::from_chars(number, end, v);
    if (ec == std::errc::result_out_of_range) {
        // Too small rounds to zero (Go returns ±0 without an error); too large is ±Inf in Go,
        // which we reject.
        if (seen_nonzero && magnitude + exponent >= 0)
            return Errc::non_finite;
        v = 0;
    } else if (ec != std::errc{} || ptr != end) {
        return Errc::bad_value;
    }
    return negative ? -v : v;
}

Result<std::int64_t> parse_counter(std::string_view s) noexcept
{
    std::string_view digits = s;
    if (!digits.empty() && digits.front() == '+')
        digits.remove_prefix(1);
    // from_chars takes the '-' itself (and would accept "+-1" if we stripped it too).
    if (digits.empty() || !(is_digit(digits.front()) || (digits.front() == '-' && s.front() != '+')))
        return Errc::bad_value;
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc{} || ptr != digits.data() + digits.size())
        return Errc::bad_value;
    return v;
}

}  // namespace core
