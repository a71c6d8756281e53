#include "http/message.hpp"

namespace http {

namespace {

constexpr char lower(char c) noexcept
{
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) noexcept
{
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_space(s.back()))
        s.remove_suffix(1);
    return s;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

bool header_has_token(std::string_view value, std::string_view token) noexcept
{
    while (!value.empty()) {
        const std::size_t comma = value.find(',');
        std::string_view element = value.substr(0, comma);
        element = element.substr(0, element.find(';'));
        if (iequals(trim(element), token))
            return true;
        if (comma == std::string_view::npos)
            break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

std::optional<std::string_view> find_header(std::span<const Header> headers,
                                            std::string_view name) noexcept
{
    for (const Header& h : headers)
        if (iequals(h.name, name))
            return h.value;
    return std::nullopt;
}

}  // namespace http
