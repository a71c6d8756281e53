#include "core/metric.hpp"

#include <array>
#include <cmath>

#include <simdjson.h>

namespace core {

namespace {

// Bytes a name may not hold: controls, space, DEL and '/'. One lookup per byte.
constexpr auto forbidden_in_name = [] {
    std::array<bool, 256> t{};
    for (std::size_t c = 0; c < t.size(); ++c)
        t[c] = c <= 0x20 || c == 0x7f || c == '/';
    return t;
}();

}  // namespace

bool valid_utf8_name(std::string_view name) noexcept
{
    if (name.empty() || name.size() > max_name_bytes)
        return false;
    for (unsigned char c : name)
        if (forbidden_in_name[c])
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
