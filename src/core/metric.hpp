#pragma once

#include "core/result.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace core {

enum class Kind : std::uint8_t { gauge, counter };

constexpr std::string_view to_string(Kind k) noexcept { return k == Kind::gauge ? "gauge" : "counter"; }
/// "gauge" or "counter" (exact, lower case); anything else is `Errc::bad_kind`.
inline Result<Kind> parse_kind(std::string_view s) noexcept
{
    // Fixed-size compares: inlined, where string_view's == calls memcmp (on every batch element).
    if (s.size() == 5 && std::memcmp(s.data(), "gauge", 5) == 0)
        return Kind::gauge;
    if (s.size() == 7 && std::memcmp(s.data(), "counter", 7) == 0)
        return Kind::counter;
    return Errc::bad_kind;
}

constexpr std::size_t max_name_bytes = 255;

/// 1..255 bytes of valid UTF-8, no control characters (< 0x20, 0x7f), no space, no '/'.
bool valid_name(std::string_view name) noexcept;
/// valid_name for a name already known to be UTF-8 (decoded from JSON, which the parser
/// validates whole): the same rules without a second UTF-8 pass.
bool valid_utf8_name(std::string_view name) noexcept;

/// One metric as it travels through parsing, storage and responses.
/// `id` is a view: it points into the request (or parser) buffer that produced it and is valid
/// only as long as that buffer; storage copies it when it inserts a new name.
/// For a gauge only `value` is meaningful, for a counter only `delta` (an update adds `delta`;
/// a stored counter or an update's result carries the total in `delta`).
struct Metric {
    std::string_view id;
    Kind kind = Kind::gauge;
    double value = 0;
    std::int64_t delta = 0;

    static Metric gauge(std::string_view id, double v) noexcept { return {id, Kind::gauge, v, 0}; }
    static Metric counter(std::string_view id, std::int64_t d) noexcept { return {id, Kind::counter, 0, d}; }
    friend bool operator==(const Metric&, const Metric&) = default;
};

/// A metric that owns its name: for listings (`/`, `/metrics`, snapshots) that outlive a lock.
struct OwnedMetric {
    std::string id;
    Kind kind = Kind::gauge;
    double value = 0;
    std::int64_t delta = 0;
    std::int64_t updated_at = 0;  ///< Unix milliseconds of its last update (0: unknown)
    std::uint64_t seq = 0;        ///< write-ahead-log sequence number of its last change (0: none)

    Metric view() const noexcept { return {id, kind, value, delta}; }
    friend bool operator==(const OwnedMetric&, const OwnedMetric&) = default;
};

/// Checks a parsed update before it reaches storage: valid name, finite gauge.
Result<void> validate(const Metric& m) noexcept;

}  // namespace core
