#pragma once

#include "core/result.hpp"

#include <cstdint>
#include <string_view>

namespace core {

/// Enough for any double in shortest fixed notation (up to ~310 digits) and any int64.
constexpr std::size_t max_number_chars = 330;

/// Gauge text form: the shortest decimal that round-trips, never an exponent or padding
/// (`123456.7`, `1234`, `0.000001`). Writes into [first, first + max_number_chars) and
/// returns the end. Precondition: finite. -0.0 prints "-0", as Go's FormatFloat(v, 'f', -1, 64).
char* format_gauge(char* first, double v) noexcept;
/// Shortest round-trip form for JSON (may use an exponent, e.g. `1e+300`). Precondition: finite.
char* format_json_double(char* first, double v) noexcept;
char* format_counter(char* first, std::int64_t v) noexcept;

/// A decimal (optional sign, digits, optional fraction and exponent), as the Go server's
/// strconv.ParseFloat accepts for finite values ("1." and ".5" included, correctly rounded).
/// NaN/Inf words and overflow to infinity: `Errc::non_finite`; underflow rounds to ±0 without
/// an error, as in Go; anything else malformed (empty, spaces, hex, underscores, trailing bytes):
/// `Errc::bad_value`.
Result<double> parse_gauge(std::string_view s) noexcept;
/// A decimal int64 with an optional sign; out of range or malformed: `Errc::bad_value`.
Result<std::int64_t> parse_counter(std::string_view s) noexcept;

/// a + b, or `Errc::counter_overflow` if the sum leaves int64.
inline Result<std::int64_t> add_counter(std::int64_t a, std::int64_t b) noexcept
{
    std::int64_t sum = 0;
    if (__builtin_add_overflow(a, b, &sum))
        return Errc::counter_overflow;
    return sum;
}

}  // namespace core
