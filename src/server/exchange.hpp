#pragma once

#include "codec/gzip.hpp"
#include "core/byte_buffer.hpp"
#include "http/message.hpp"
#include "server/response.hpp"

#include <chrono>
#include <cstddef>
#include <string>

namespace server {

/// Memory a connection may keep between requests, per buffer: anything a large request grew
/// beyond it is given back once the answer is written, so that idle keep-alive connections
/// cost a small constant whatever they asked before.
constexpr std::size_t retained_bytes = 64 * 1024;

/// Per-connection scratch reused across requests so that the hot path does not allocate.
/// Owned by the connection coroutine; touched only on its strand.
/// (JSON parsers are lent per request instead: see JsonLease in router.cpp.)
struct Scratch {
    /// This thread's gzip codec, for use within one synchronous call (its compressor state is
    /// far larger than a connection should keep). Never hold the reference across a suspension.
    static codec::Gzip& gzip();

    /// Gives back buffers grown past `retained_bytes` (call after the answer is written).
    void trim() noexcept
    {
        if (decoded_body.capacity() > retained_bytes || path_segment.capacity() > retained_bytes ||
            opened_body.capacity() > retained_bytes || audit_ids.capacity() > retained_bytes)
            release();  // rare: inline test only
    }

    core::ByteBuffer decoded_body;  ///< gunzipped request body
    std::string path_segment;       ///< a percent-decoded URL segment
    std::string opened_body;        ///< the contents of a sealed box (OpenSealedBox)
    std::string audit_ids;          ///< JSON ids of the metrics an update stored (Audit)

private:
    void release() noexcept;
};

/// One request/response pair travelling through the middleware chain and a handler.
/// `request` and its views point into the connection's buffer and stay valid until the
/// response is written.
struct Exchange {
    const http::Request& request;
    std::string_view body;  ///< the request body after decoding middleware (gunzip)
    Response& response;
    Scratch& scratch;
    std::string_view peer;  ///< client address as text, formatted once per connection
    bool head_only = false;  ///< a HEAD request: the body is computed for its length, not sent
    /// When the chain took the request and gave the answer back: read once by the first layer
    /// that times it (CountRequests, AccessLog) and shared, since a clock read costs ~30 ns.
    std::chrono::steady_clock::time_point started{};
    std::chrono::steady_clock::time_point finished{};
    std::uint64_t counted_body = 0;  ///< the request body bytes as received, for CountRequests
    /// Set by Audit for an update request: the router appends the ids it stored (audit.hpp).
    std::string* audit_ids = nullptr;
};

}  // namespace server
