#include "http/message.hpp"

#include <cstring>

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
    // Equal words need no case folding, and that is the common case (same spelling).
    std::size_t i = 0;
    for (; i + 8 <= a.size(); i += 8)
        if (std::memcmp(a.data() + i, b.data() + i, 8) != 0)
            break;
    for (; i < a.size(); ++i)
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

std::string_view field_name(Field f) noexcept
{
    switch (f) {
    case Field::host: return "Host";
    case Field::content_length: return "Content-Length";
    case Field::transfer_encoding: return "Transfer-Encoding";
    case Field::connection: return "Connection";
    case Field::expect: return "Expect";
    case Field::content_type: return "Content-Type";
    case Field::content_encoding: return "Content-Encoding";
    case Field::accept_encoding: return "Accept-Encoding";
    case Field::hash_sha256: return "HashSHA256";
    }
    return {};
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
