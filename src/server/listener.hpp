#pragma once

#include "core/asio.hpp"
#include "http/parser.hpp"
#include "server/middleware.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace server {

class HttpStats;

using namespace std::chrono_literals;

struct ConnectionLimits {
    http::Limits http{};
    std::size_t max_connections = 10000;             ///< beyond: 503 and close
    std::chrono::milliseconds header_timeout = 10s;  ///< first byte to end of headers
    std::chrono::milliseconds body_timeout = 30s;    ///< end of headers to end of body
    std::chrono::milliseconds idle_timeout = 60s;    ///< keep-alive wait for the next request
    std::chrono::milliseconds write_timeout = 30s;   ///< one response write
};

struct Connection;

/// The HTTP/1.1 front: accepts on one socket and runs each connection as a coroutine on its
/// own strand of the shared io_context (keep-alive, pipelining, 100-continue, deadlines).
/// Lifetime: outlives every connection it starts (main waits for `active()` to reach 0).
class Listener {
public:
    /// `pipeline` and `stats` outlive the listener (owned by main); `stats` (optional) counts
    /// connections and the answers no route gives (framing errors, limits, timeouts).
    Listener(asio::io_context& ioc, const Pipeline& pipeline, ConnectionLimits limits, HttpStats* stats = nullptr);
    ~Listener();

    /// Binds with SO_REUSEADDR and listens. Throws std::system_error (port in use, bad address).
    void listen(const asio::ip::tcp::endpoint& endpoint);
    asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

    /// Accepts until `stop()`.
    core::awaitable<void> run();

    /// Stops accepting; idle connections close now, busy ones after their current response.
    /// Thread-safe.
    void stop();
    std::size_t active() const noexcept { return active_.load(); }
    bool stopping() const noexcept { return stopping_.load(); }

private:
    friend struct Connection;
    core::awaitable<void> serve(std::shared_ptr<Connection> c);
    core::awaitable<void> watchdog(std::shared_ptr<Connection> c);
    core::awaitable<void> refuse(asio::ip::tcp::socket socket);
    void forget(Connection* c);

    asio::io_context& ioc_;
    const Pipeline& pipeline_;
    ConnectionLimits limits_;
    HttpStats* stats_;
    asio::ip::tcp::acceptor acceptor_;
    std::atomic<std::size_t> active_{0};
    std::atomic<bool> stopping_{false};
    std::mutex registry_mutex_;
    std::unordered_map<Connection*, std::weak_ptr<Connection>> registry_;
};

}  // namespace server
