#pragma once

#include "codec/gzip.hpp"
#include "core/json.hpp"
#include "core/metric.hpp"
#include "http/message.hpp"
#include "server/response.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace server {

/// Per-connection scratch reused across requests so that the hot path does not allocate.
/// Owned by the connection coroutine; touched only on its strand.
struct Scratch {
    core::JsonCodec& json()
    {
        if (!json_)
            json_.emplace();
        return *json_;
    }
    codec::Gzip& gzip()
    {
        if (!gzip_)
            gzip_.emplace();
        return *gzip_;
    }
    std::string decoded_body;          ///< gunzipped request body
    std::string path_segment;          ///< a percent-decoded URL segment
    std::vector<core::Metric> batch;   ///< parsed /updates/ elements
    std::vector<core::Metric> stored;  ///< their stored results

private:
    std::optional<core::JsonCodec> json_;
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
};

}  // namespace server
