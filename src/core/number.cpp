#include "core/number.hpp"

#include <charconv>
#include <cmath>
#include <limits>

namespace core {

char* format_gauge(char* first, double v) noexcept
{
    // Shortest round-trip digits in fixed notation, as Go's strconv.FormatFloat(v, 'f', -1, 64):
    // -0.0 prints "-0" there too. max_number_chars covers the longest case (denorm_min: 0.000…5,
    // 326 chars).
    return std::to_chars(first, first + max_number_chars, v, std::chars_format::fixed).ptr;
}

char* format_json_double(char* first, double v) noexcept
{
    // Shortest round-trip, choosing fixed or exponent form, whichever is shorter ("1e+300");
    // both are valid JSON number literals.
    return std::to_chars(first, first + max_number_chars, v).ptr;
}

char* format_counter(char* first, std::int64_t v) noexcept
{
    return std::to_chars(first, first + max_number_chars, v).ptr;
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
