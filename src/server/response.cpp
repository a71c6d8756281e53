#include "server/response.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>

namespace server {

int status_for(core::Errc e) noexcept
{
    using core::Errc;
    switch (e) {
    case Errc::ok: return 200;
    case Errc::not_found: return 404;
    case Errc::batch_too_large:
    case Errc::body_too_large: return 413;
    case Errc::header_too_large: return 431;
    case Errc::uri_too_long: return 414;
    case Errc::unsupported_media_type: return 415;
    case Errc::forbidden: return 403;
    case Errc::timeout: return 408;
    case Errc::storage_busy: return 503;
    case Errc::too_many_metrics: return 507;
    case Errc::storage_unavailable:
    case Errc::outcome_unknown:
    case Errc::io_error:
    case Errc::corrupt_snapshot: return 500;
    case Errc::bad_name:
    case Errc::bad_kind:
    case Errc::bad_value:
    case Errc::non_finite:
    case Errc::counter_overflow:
    case Errc::malformed_json:
    case Errc::missing_field:
    case Errc::empty_batch:
    case Errc::bad_request:
    case Errc::bad_encoding:
    case Errc::bad_hash: return 400;
    }
    return 500;
}

std::string_view reason_phrase(int status) noexcept
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    }
    return "Unknown";
}

void Response::clear() noexcept
{
    status = 200;
    type = content_type::text;
    body.clear();
    encoded.clear();
    body_is_encoded = false;
    close = false;
    header_count_ = 0;
}

void Response::release(std::size_t keep) noexcept
{
    if (body.capacity() > keep)
        body = fmt::memory_buffer{};
    if (encoded.capacity() > keep)
        std::string{}.swap(encoded);
}

void Response::fail(int status_code, std::string_view reason)
{
    status = status_code;
    type = content_type::text;
    body.clear();
    body.append(reason);
    body.push_back('\n');
}

void Response::fail(core::Errc e)
{
    fail(status_for(e), core::message(e));
    if (status == 503)
        add_header("Retry-After", retry_after_seconds);
}

void Response::text(std::string_view s)
{
    status = 200;
    type = content_type::text;
    body.clear();
    body.append(s);
}

void Response::add_header(std::string_view name, std::string_view value) noexcept
{
    assert(header_count_ < headers_.size());
    if (header_count_ < headers_.size())
        headers_[header_count_++] = {name, value};
}

namespace {

char* put(char* out, std::string_view s) noexcept
{
    std::memcpy(out, s.data(), s.size());
    return out + s.size();
}

/// `v` in decimal, written in place from its last digit (no copy through a scratch array).
char* put_decimal(char* out, std::size_t v) noexcept
{
    std::size_t digits = 1;
    for (std::size_t rest = v; rest >= 10; rest /= 10)
        ++digits;
    char* const end = out + digits;
    char* p = end;
    do {
        *--p = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return end;
}

constexpr std::string_view content_type_line = "\r\nContent-Type: ";
constexpr std::string_view content_length_line = "\r\nContent-Length: ";
constexpr std::string_view close_line = "\r\nConnection: close";
constexpr std::string_view keep_alive_line = "\r\nConnection: keep-alive";

/// The head of a 200 answer of one content type up to the length's digits, laid out at compile
/// time: most answers are these, and one copy of a fixed size (inline) replaces five pieces, three
/// of them memcpy calls (BM_UpdateHandler, docs/PROFILING.md).
struct OkPrefix {
    static constexpr std::size_t capacity = 80;
    std::string_view type;
    std::array<char, capacity> text{};
    std::size_t size = 0;

    consteval explicit OkPrefix(std::string_view t) : type(t)
    {
        for (std::string_view part : {std::string_view{"HTTP/1.1 200 OK"}, content_type_line, t, content_length_line})
            for (char c : part)
                text[size++] = c;
    }
};

constexpr std::array ok_prefixes{OkPrefix{content_type::json}, OkPrefix{content_type::text}};
static_assert(ok_prefixes[1].size <= OkPrefix::capacity);

/// The prefix for a 200 answer of `type`, if it has one. Types are content_type's constants,
/// whose literals the linker merges: the pointer compare decides at once, and the bytes are
/// compared only if a literal was not merged (same size, other address).
const OkPrefix* ok_prefix(std::string_view type) noexcept
{
    for (const OkPrefix& prefix : ok_prefixes)
        if (type.data() == prefix.type.data() ? type.size() == prefix.type.size() : type == prefix.type)
            return &prefix;
    return nullptr;
}

}  // namespace

void Response::write_head(fmt::memory_buffer& out, int version_minor, bool keep_alive) const
{
    // Written by hand into room reserved once: this runs for every response, and fmt's
    // runtime format strings cost more than everything else here together.
    assert(version_minor == 0 || version_minor == 1);
    const OkPrefix* prefix = status == 200 ? ok_prefix(type) : nullptr;
    const std::string_view reason = prefix != nullptr ? std::string_view{} : reason_phrase(status);  // the prefix has it
    // "HTTP/1.x ", the status (any int fits 20 digits), ' ', the reason...
    std::size_t room = 30 + reason.size() + content_type_line.size() + type.size() +
                       content_length_line.size() + 20 + keep_alive_line.size() + 4;
    for (std::size_t i = 0; i < header_count_; ++i)
        room += 4 + headers_[i].name.size() + headers_[i].value.size();
    room = std::max(room, OkPrefix::capacity);  // the prefix is copied whole (room exceeds it anyway)
    const std::size_t start = out.size();
    out.resize(start + room);
    char* p = out.data() + start;

    if (prefix != nullptr) {
        std::memcpy(p, prefix->text.data(), OkPrefix::capacity);
        p[7] = static_cast<char>('0' + version_minor);  // "HTTP/1.x"
        p += prefix->size;
    } else {
        p = put(p, "HTTP/1.");
        *p++ = static_cast<char>('0' + version_minor);
        *p++ = ' ';
        p = put_decimal(p, static_cast<std::size_t>(status));
        *p++ = ' ';
        p = put(p, reason);
        p = put(p, content_type_line);
        p = put(p, type);
        p = put(p, content_length_line);
    }
    p = put_decimal(p, payload().size());
    for (std::size_t i = 0; i < header_count_; ++i) {
        p = put(p, "\r\n");
        p = put(p, headers_[i].name);
        p = put(p, ": ");
        p = put(p, headers_[i].value);
    }
    // HTTP/1.1 keeps connections open by default; HTTP/1.0 needs the explicit token.
    if (!keep_alive)
        p = put(p, close_line);
    else if (version_minor == 0)
        p = put(p, keep_alive_line);
    p = put(p, "\r\n\r\n");
    out.resize(static_cast<std::size_t>(p - out.data()));
}

}  // namespace server
