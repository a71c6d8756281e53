#pragma once

#include "codec/gzip.hpp"
#include "http/message.hpp"
#include "server/response.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace server {

/// Per-connection scratch reused across requests so that the hot path does not allocate.
/// Owned by the connection coroutine; touched only on its strand.
/// (JSON parsers are lent per request instead: see JsonLease in router.cpp.)
struct Scratch {
    codec::Gzip& gzip()
    {
        if (!gzip_)
            gzip_.emplace();
        return *gzip_;
    }
    std::string decoded_body;          ///< gunzipped request body
    std::string path_segment;          ///< a percent-decoded URL segment
    std::string opened_body;           ///< the contents of a sealed box (OpenSealedBox)
    std::string audit_ids;             ///< JSON ids of the metrics an update stored (Audit)

private:
    std::optional<codec::Gzip> gzip_;
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
    std::chrono::steady_clock::time_point started{};  ///< set by AccessLog on the way in
    /// Set by Audit for an update request: the router appends the ids it stored (audit.hpp).
    std::string* audit_ids = nullptr;
};

}  // namespace server
