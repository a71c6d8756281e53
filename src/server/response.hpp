#pragma once

#include "core/metric.hpp"
#include "core/result.hpp"

#include <fmt/format.h>

#include <array>
#include <string>
#include <string_view>

namespace server {

namespace content_type {
constexpr std::string_view text = "text/plain; charset=utf-8";
constexpr std::string_view json = "application/json";
constexpr std::string_view html = "text/html; charset=utf-8";
constexpr std::string_view prometheus = "text/plain; version=0.0.4; charset=utf-8";
}  // namespace content_type

/// The `Retry-After` of a 503 (storage busy or down): short, since the deadline that produced
/// it already spent several seconds; clients cap their own backoff.
constexpr std::string_view retry_after_seconds = "1";

/// The HTTP status for an input-driven failure (one table for the whole server).
int status_for(core::Errc e) noexcept;
std::string_view reason_phrase(int status) noexcept;

/// A response being built by handlers and middleware. Owned by the connection and reused:
/// `clear()` keeps the buffers' capacity, so steady-state requests do not allocate.
/// Header names and values given to `add_header` must outlive the response's write
/// (string literals, or storage owned by the connection such as its Scratch).
class Response {
public:
    static constexpr std::size_t max_extra_headers = 8;

    int status = 200;
    std::string_view type = content_type::text;
    fmt::memory_buffer body;         ///< what handlers write
    std::string encoded;             ///< gzip output when the body is compressed
    bool body_is_encoded = false;    ///< send `encoded` instead of `body`
    bool close = false;              ///< send Connection: close and end the connection
    std::array<char, 64> hash_hex{}; ///< storage for the HashSHA256 value

    void clear() noexcept;
    /// Frees the body and gzip buffers when they grew past `keep` bytes (a large answer), so
    /// that a kept-alive connection does not hold them. Call after the response is written.
    void trim(std::size_t keep) noexcept
    {
        if (body.capacity() > keep || encoded.capacity() > keep)  // rare: inline test only
            release(keep);
    }

    /// Status plus a short reason as the plain-text body.
    void fail(int status_code, std::string_view reason);
    /// Status and reason for `e`; a 503 also carries `Retry-After` (retry_after_seconds).
    void fail(core::Errc e);
    void text(std::string_view s);
    /// A JSON body (metric or array) written by `write`.
    template <class Write>
    void json(Write&& write)
    {
        status = 200;
        type = content_type::json;
        body.clear();
        write(body);
    }

    void add_header(std::string_view name, std::string_view value) noexcept;
    std::string_view payload() const noexcept
    {
        return body_is_encoded ? std::string_view{encoded} : std::string_view{body.data(), body.size()};
    }

    /// Appends the status line and headers (not the body) to `out`. For a HEAD request the
    /// connection sends this head alone, with the Content-Length a GET would get.
    void write_head(fmt::memory_buffer& out, int version_minor, bool keep_alive) const;

private:
    void release(std::size_t keep) noexcept;

    struct Header {
        std::string_view name, value;
    };
    std::array<Header, max_extra_headers> headers_{};
    std::size_t header_count_ = 0;
};

}  // namespace server
