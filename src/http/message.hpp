#pragma once

// HTTP/1.1 messages as the parsers yield them: views into the caller's receive buffer, valid
// while that buffer is alive and unchanged (see parser.hpp for when each field becomes valid).

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace http {

/// One header field line. `value` has no leading or trailing whitespace.
struct Header {
    std::string_view name;
    std::string_view value;
};

enum class Method : std::uint8_t { get, head, post, put, delete_, options, patch, other };

/// The header fields that framing, middleware or the client look at. The parsers index them
/// once per message, so a lookup is one array read instead of a case-insensitive scan.
enum class Field : std::uint8_t {
    host, content_length, transfer_encoding, connection, expect, content_type, content_encoding,
    accept_encoding, hash_sha256,
};
inline constexpr std::size_t field_count = 9;

/// The canonical spelling of `f` ("Content-Length").
std::string_view field_name(Field f) noexcept;

/// Where the first line of each Field sits in a message's header list: index + 1, 0 when
/// absent. Filled by the parsers; empty in a message built by hand.
struct FieldIndex {
    std::array<std::uint8_t, field_count> slot{};

    std::optional<std::string_view> find(std::span<const Header> headers, Field f) const noexcept
    {
        const std::size_t s = slot[static_cast<std::size_t>(f)];
        if (s == 0 || s > headers.size())
            return std::nullopt;
        return headers[s - 1].value;
    }
};

/// ASCII case-insensitive equality (header names, tokens).
bool iequals(std::string_view a, std::string_view b) noexcept;

/// Whether a comma-separated header value lists `token`, compared case-insensitively, ignoring
/// spaces around elements and `;parameters`: `header_has_token("GZIP;q=1, br", "gzip")` is true.
/// A `q=0` parameter is ignored too, like every parameter.
bool header_has_token(std::string_view value, std::string_view token) noexcept;

/// The value of the first header named `name` (case-insensitive), if any.
std::optional<std::string_view> find_header(std::span<const Header> headers,
                                            std::string_view name) noexcept;

struct Request {
    Method method = Method::other;
    std::string_view method_text;  ///< as sent, case-sensitive ("GET")
    std::string_view target;       ///< raw origin-form target: "/value/gauge/x?a=b"
    std::string_view path;         ///< target before the first '?'
    std::string_view query;        ///< target after the first '?', without it; empty if none
    int version_minor = 1;         ///< 0 or 1 (HTTP/1.0, HTTP/1.1)
    std::span<const Header> headers;
    std::string_view body;         ///< de-chunked when the request was chunked
    bool keep_alive = false;       ///< 1.1: unless `Connection: close`; 1.0: only with keep-alive
    bool expect_continue = false;  ///< HTTP/1.1 with `Expect: 100-continue`
    FieldIndex fields;             ///< set by the parser with `headers`

    std::optional<std::string_view> header(std::string_view name) const noexcept
    {
        return find_header(headers, name);
    }
    /// As header(field_name(f)), without the scan: only for a request from the parser.
    std::optional<std::string_view> header(Field f) const noexcept { return fields.find(headers, f); }
};

struct Response {
    int status = 0;  ///< 100..599; never 1xx once parsed (interim responses are skipped)
    std::string_view reason;
    int version_minor = 1;
    std::span<const Header> headers;
    std::string_view body;  ///< de-chunked when the response was chunked
    bool keep_alive = false;  ///< the connection may carry another request
    FieldIndex fields;        ///< set by the parser with `headers`

    std::optional<std::string_view> header(std::string_view name) const noexcept
    {
        return find_header(headers, name);
    }
    /// As header(field_name(f)), without the scan: only for a response from the parser.
    std::optional<std::string_view> header(Field f) const noexcept { return fields.find(headers, f); }
};

}  // namespace http
