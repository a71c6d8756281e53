#pragma once

// A small keep-alive HTTP/1.1 client on Asio coroutines, for the agent and the audit sink.

#include "http/message.hpp"
#include "http/parser.hpp"

#include "core/asio.hpp"
#include "core/result.hpp"

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace http {

struct ClientOptions {
    std::chrono::milliseconds connect_timeout{5000};  ///< each of name resolution and connect
    std::chrono::milliseconds io_timeout{10000};      ///< each write and each read
    /// The whole request: connecting, sending and the complete answer. A server that trickles
    /// its answer cannot hold the client longer.
    std::chrono::milliseconds request_timeout{30000};
    Limits limits{};                                  ///< for responses
    /// Receive buffer capacity kept between requests; a larger one (a big answer) is freed.
    std::size_t kept_buffer_bytes = 64 * 1024;
};

struct ClientResponse {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;  ///< de-chunked

    /// The first header named `name` (case-insensitive); a view into `headers`.
    std::optional<std::string_view> header(std::string_view name) const noexcept;
};

/// One connection to one server, reused while the server keeps it alive. One request at a
/// time: not thread-safe, use it from one strand. Not movable (the parser is not).
class Client {
public:
    Client(asio::any_io_executor ex, std::string host, std::string port, ClientOptions options = {});
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    /// Sends one request and reads its response. Adds `Host` and, when there is a body or the
    /// method is not GET or HEAD, `Content-Length`; `headers` must not contain either. The
    /// arguments must outlive the returned awaitable (`co_await client.request(...)` in one
    /// expression). Connects when needed; a reused connection that turns out closed before
    /// any response byte arrived is retried once on a fresh connection.
    /// Errors: io_error (DNS failure, refused, reset, closed mid-response), timeout (a step
    /// exceeded its timeout, or the whole request options.request_timeout), bad_request
    /// (malformed response), header_too_large or
    /// body_too_large (response over `options.limits`). After any error the connection is
    /// closed; the next request opens a new one.
    /// Note: Asio 1.22 cannot cancel a running name resolution, so a slow DNS server is waited
    /// for past connect_timeout (the result is then discarded as a timeout).
    asio::awaitable<core::Result<ClientResponse>> request(std::string_view method,
                                                          std::string_view target,
                                                          std::span<const Header> headers,
                                                          std::string_view body);

    /// The local address of the connection, connecting first when there is none: the address
    /// the server sees this client as (what X-Real-IP asserts). Errors as for request().
    asio::awaitable<core::Result<asio::ip::address>> local_address();

    /// Closes the connection (the next request reconnects).
    void close() noexcept;

private:
    using Deadline = std::chrono::steady_clock::time_point;

    asio::awaitable<core::Result<void>> connect(Deadline deadline);
    // One write and read on the current connection; `stale` says the failure happened before
    // any response byte, so a fresh connection may succeed.
    asio::awaitable<core::Result<ClientResponse>> exchange(std::string_view body, bool head,
                                                           Deadline deadline, bool& stale);
    asio::awaitable<core::Result<ClientResponse>> receive(bool head, Deadline deadline, bool& stale);
    // What is left of `step` before `deadline` (zero once it has passed).
    static std::chrono::steady_clock::duration within(std::chrono::milliseconds step, Deadline deadline) noexcept;
    void trim_buffer() noexcept;
    void format_head(std::string_view method, std::string_view target,
                     std::span<const Header> headers, std::string_view body);

    asio::any_io_executor ex_;
    std::string host_;
    std::string port_;
    ClientOptions options_;
    asio::ip::tcp::socket socket_;
    std::string head_;       // the request head being sent, reused
    std::vector<char> in_;   // the response being received, reused
    ResponseParser parser_;
};

}  // namespace http
