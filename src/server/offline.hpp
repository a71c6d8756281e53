#pragma once

#include "http/parser.hpp"
#include "server/exchange.hpp"
#include "server/middleware.hpp"

#include <string>

namespace server {

/// Runs raw request bytes through the parser, the pipeline and the response writer without a
/// socket: what unit tests and handler benchmarks drive. Not thread-safe; reusable, so steady
/// state allocates like a real connection does.
class OfflineConnection {
public:
    /// `pipeline` outlives this object.
    explicit OfflineConnection(const Pipeline& pipeline, http::Limits limits = {});

    struct Answer {
        int status = 0;
        std::string_view head;  ///< status line and headers
        std::string_view body;  ///< payload as it would be sent
    };
    /// One complete request in `raw`; the views stay valid until the next call.
    /// A framing error yields its status with an empty head.
    Answer handle(std::string_view raw);

private:
    const Pipeline& pipeline_;
    asio::io_context ioc_;
    http::RequestParser parser_;
    std::string buffer_;
    Scratch scratch_;
    Response response_;
    fmt::memory_buffer head_;
};

}  // namespace server
