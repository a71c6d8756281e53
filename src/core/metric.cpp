#include "core/metric.hpp"

#include <cmath>
#include <cstring>

#include <simdjson.h>

namespace core {

Result<Kind> parse_kind(std::string_view s) noexcept
{
    // Fixed-size compares: inlined, where string_view's == calls memcmp (on every batch element).
    if (s.size() == 5 && std::memcmp(s.data(), "gauge", 5) == 0)
        return Kind::gauge;
    if (s.size() == 7 && std::memcmp(s.data(), "counter", 7) == 0)
        return Kind::counter;
    return Errc::bad_kind;
}

bool valid_utf8_name(std::string_view name) noexcept
{
    if (name.empty() || name.size() > max_name_bytes)
        return false;
    for (unsigned char c : name)
        if (c <= 0x20 || c == 0x7f || c == '/')
            return false;
    return true;
}

bool valid_name(std::string_view name) noexcept
{
    // JSON (responses, snapshots) can only carry UTF-8 names faithfully.
    return valid_utf8_name(name) && simdjson::validate_utf8(name.data(), name.size());
}

Result<void> validate(const Metric& m) noexcept
{
    if (!valid_name(m.id))
        return Errc::bad_name;
    if (m.kind == Kind::gauge && !std::isfinite(m.value))
        return Errc::non_finite;
    return {};
}

}  // namespace core
