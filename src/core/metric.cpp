#include "core/metric.hpp"

#include "core/bytes.hpp"

#include <array>
#include <cmath>

#include <simdjson.h>

namespace core {

namespace {

// Bytes a name may not hold: controls, space, DEL and '/' (the tail's test; words use SWAR).
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
    const auto forbidden = [](std::uint64_t w) {
        return bytes::below(w, 0x21) | bytes::equal_to(w, 0x7f) | bytes::equal_to(w, '/');
    };
    if (name.size() >= 4 && name.size() <= 16)  // most names
        return bytes::none_short(name, forbidden);
    return bytes::find_first(name, 0, forbidden, [](unsigned char c) { return forbidden_in_name[c]; }) == name.size();
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
