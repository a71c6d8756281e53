#include "server/listener.hpp"

#include "server/self_metrics.hpp"

#include "core/byte_buffer.hpp"
#include "core/log.hpp"
#include "server/response.hpp"

#include <algorithm>
#include <array>
#include <span>
#include <utility>

namespace server {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t initial_buffer = 8 * 1024;
constexpr auto timeout_reply_window = 1s;
/// How late a timeout may fire: the watchdog's timer is re-armed only when a deadline moves
/// earlier by more than this, so the common keep-alive request does no timer work at all.
constexpr auto deadline_slack = 1s;

core::awaitable<void> linger_close(asio::ip::tcp::socket& socket);

}  // namespace

/// One client connection. Touched only on its strand, by `serve` and `watchdog`.
struct Connection {
    Connection(tcp::socket s, const ConnectionLimits& limits)
        : socket(std::move(s)), timer(socket.get_executor()), parser(limits.http)
    {
        std::error_code ec;
        auto ep = socket.remote_endpoint(ec);
        peer = ec ? "-" : ep.address().to_string();
        socket.non_blocking(true, ec);  // for write_now; Asio's async operations are unaffected
        buffer.reserve(initial_buffer);
    }

    /// Received bytes not yet consumed by a request: [start, buffer.size()).
    std::span<char> pending() noexcept { return {buffer.data() + start, buffer.size() - start}; }

    tcp::socket socket;
    asio::steady_timer timer;
    Clock::time_point deadline = Clock::time_point::max();
    bool timed_out = false;  ///< the watchdog cancelled the socket's operations
    bool busy = false;       ///< a request is being answered: shutdown waits for it
    bool finished = false;
    core::ByteBuffer buffer;  ///< received bytes; those before `start` are answered requests
    std::size_t start = 0;
    http::RequestParser parser;
    Scratch scratch;
    Response response;
    fmt::memory_buffer head;
    std::string peer;
};

Listener::Listener(asio::io_context& ioc, const Pipeline& pipeline, ConnectionLimits limits, HttpStats* stats)
    : ioc_(ioc), pipeline_(pipeline), limits_(limits), stats_(stats), acceptor_(ioc)
{
}

Listener::~Listener() = default;

void Listener::listen(const tcp::endpoint& endpoint)
{
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
}

core::awaitable<void> Listener::run()
{
    while (!stopping_) {
        auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(ioc_), core::use_nothrow_awaitable);
        if (ec) {
            if (ec == asio::error::operation_aborted || stopping_)
                break;
            // EMFILE and friends: log, back off briefly, keep serving the others.
            core::log::warn("accept failed: {}", ec.message());
            asio::steady_timer pause{co_await asio::this_coro::executor, 50ms};
            co_await pause.async_wait(core::use_nothrow_awaitable);
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        const auto executor = socket.get_executor();
        if (active_.fetch_add(1) >= limits_.max_connections) {
            if (stats_ != nullptr) {
                stats_->connection_refused();
                stats_->rejected(Rejection::overloaded);
            }
            asio::co_spawn(executor, refuse(std::move(socket)), asio::detached);
            continue;
        }
        if (stats_ != nullptr)
            stats_->connection_opened();
        auto c = std::make_shared<Connection>(std::move(socket), limits_);
        {
            std::lock_guard lock{registry_mutex_};
            registry_.emplace(c.get(), c);
        }
        asio::co_spawn(executor, watchdog(c), asio::detached);
        asio::co_spawn(executor, serve(std::move(c)), [](std::exception_ptr e) {
            if (!e)
                return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                core::log::error("connection ended by an unexpected error: {}", ex.what());
            }
        });
    }
}

void Listener::stop()
{
    if (stopping_.exchange(true))
        return;
    asio::post(acceptor_.get_executor(), [this] {
        std::error_code ec;
        acceptor_.close(ec);
    });
    std::lock_guard lock{registry_mutex_};
    for (auto& [raw, weak] : registry_) {
        if (auto c = weak.lock()) {
            asio::post(c->socket.get_executor(), [c] {
                // Idle connections end now; a busy one ends after its response.
                if (!c->busy) {
                    std::error_code ec;
                    c->socket.cancel(ec);
                }
            });
        }
    }
}

void Listener::forget(Connection* c)
{
    {
        std::lock_guard lock{registry_mutex_};
        registry_.erase(c);
    }
    active_.fetch_sub(1);
    if (stats_ != nullptr)
        stats_->connection_closed();
}

core::awaitable<void> Listener::refuse(tcp::socket socket)
{
    static constexpr std::string_view reply =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n"
        "Retry-After: 1\r\nConnection: close\r\n\r\ntoo many connections";
    auto [ec, n] = co_await core::with_timeout(
        asio::async_write(socket, asio::buffer(reply), core::use_nothrow_awaitable), 1s);
    (void)n;
    if (!ec)
        co_await linger_close(socket);
    socket.close(ec);
    active_.fetch_sub(1);
}

core::awaitable<void> Listener::watchdog(std::shared_ptr<Connection> c)
{
    while (!c->finished) {
        c->timer.expires_at(c->deadline);
        co_await c->timer.async_wait(core::use_nothrow_awaitable);
        if (c->finished)
            break;
        const auto now = Clock::now();
        if (c->busy) {  // handler time is not the client's: look again later
            c->deadline = std::max(c->deadline, now + deadline_slack);
            continue;
        }
        if (c->deadline > now)
            continue;  // the deadline moved while we slept
        std::error_code ec;
        if (c->timed_out) {
            c->socket.close(ec);  // no time left even for the 408
            break;
        }
        c->timed_out = true;
        c->deadline = Clock::now() + timeout_reply_window;
        c->socket.cancel(ec);
    }
}

namespace {

/// Closing a socket with unread request bytes makes the kernel send RST, which can destroy the
/// error answer just written before the client reads it: half-close, then read and discard
/// briefly until the client closes too.
core::awaitable<void> linger_close(tcp::socket& socket)
{
    std::error_code ec;
    socket.shutdown(tcp::socket::shutdown_send, ec);
    std::array<char, 4096> sink;
    const auto until = Clock::now() + timeout_reply_window;
    for (int reads = 0; !ec && reads < 64 && Clock::now() < until; ++reads) {
        auto [read_ec, n] = co_await core::with_timeout(
            socket.async_read_some(asio::buffer(sink), core::use_nothrow_awaitable), timeout_reply_window);
        (void)n;
        ec = read_ec;
    }
}

/// Moves the connection's deadline; wakes the watchdog only when it must fire much earlier.
void set_deadline(Connection& c, Clock::time_point when)
{
    c.deadline = when;
    if (when + deadline_slack < c.timer.expiry())
        c.timer.expires_at(when);  // cancels the watchdog's wait; it re-arms at `deadline`
}

using Buffers = std::array<asio::const_buffer, 2>;

/// Writes what the (non-blocking) socket takes right now and returns what is left: most
/// answers fit its send buffer, so they skip async_write's completion hop.
Buffers write_now(tcp::socket& socket, Buffers buffers, std::error_code& ec)
{
    std::size_t n = socket.write_some(buffers, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
        n = 0;
    }
    for (auto& b : buffers) {
        const std::size_t taken = std::min(n, b.size());
        b += taken;
        n -= taken;
    }
    return buffers;
}

/// Writes a bare error answer and ends the connection (framing errors, timeouts), counted in
/// `stats` when given.
core::awaitable<void> reply_and_close(Connection& c, int status, std::string_view reason, HttpStats* stats)
{
    if (stats != nullptr)
        stats->rejected(status);
    c.response.clear();
    c.response.fail(status, reason);
    c.head.clear();
    c.response.write_head(c.head, 1, false);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(c.head.data(), c.head.size()),
                                                    asio::buffer(c.response.payload())};
    auto [ec, n] = co_await asio::async_write(c.socket, buffers, core::use_nothrow_awaitable);
    (void)n;
    if (!ec)
        co_await linger_close(c.socket);
}

/// Marks `n` more received bytes as answered. The pipelined bytes that follow stay where they
/// are: moving them after every request would cost the size of what is left each time
/// (quadratic for many small requests behind a large body). They move only when the answered
/// prefix is more than half the buffer, which makes the copying at most one byte per byte
/// answered, or to give back a buffer that a large request grew.
void consume(Connection& c, std::size_t n)
{
    c.start += n;
    if (c.start == c.buffer.size()) {
        c.buffer.clear();
        c.start = 0;
    } else if (c.start > c.buffer.capacity() / 2) {
        c.buffer.erase_front(std::exchange(c.start, 0));
    }
    if (c.buffer.capacity() > retained_bytes && c.pending().size() <= initial_buffer) {
        c.buffer.erase_front(std::exchange(c.start, 0));
        c.buffer.shrink_to(initial_buffer);
    }
}

}  // namespace

core::awaitable<void> Listener::serve(std::shared_ptr<Connection> conn)
{
    Connection& c = *conn;
    struct Cleanup {
        Listener& self;
        Connection& c;
        ~Cleanup()
        {
            c.finished = true;
            c.timer.cancel();
            self.forget(&c);
        }
    } cleanup{*this, c};

    const std::size_t max_request = limits_.http.max_message_bytes();
    for (;;) {
        c.parser.reset();
        auto state = !c.pending().empty() ? c.parser.parse(c.pending()) : http::RequestParser::State::need_more;
        set_deadline(c, Clock::now() + (!c.pending().empty() ? limits_.header_timeout : limits_.idle_timeout));
        bool in_body = false;
        bool continue_sent = false;
        while (state == http::RequestParser::State::need_more) {
            if (stopping_ && c.pending().empty())
                co_return;
            if (c.parser.headers_complete() && !in_body) {
                in_body = true;
                set_deadline(c, Clock::now() + limits_.body_timeout);
                if (c.parser.request().expect_continue && !continue_sent) {
                    continue_sent = true;
                    static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
                    auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(go_on), core::use_nothrow_awaitable);
                    (void)n;
                    if (ec)
                        co_return;
                }
            }
            if (c.buffer.size() == c.buffer.capacity()) {
                // Everything pending is this one incomplete request: moved to the front at most
                // once, so each byte is copied a bounded number of times.
                c.buffer.erase_front(std::exchange(c.start, 0));
                if (c.buffer.size() == c.buffer.capacity()) {
                    if (c.buffer.capacity() >= max_request) {
                        co_await reply_and_close(c, 413, "request too large", stats_);
                        co_return;
                    }
                    c.buffer.reserve(std::min(c.buffer.capacity() * 2, max_request));
                }
            }
            const std::size_t filled = c.buffer.size();
            auto [ec, n] = co_await c.socket.async_read_some(
                asio::buffer(c.buffer.data() + filled, c.buffer.capacity() - filled), core::use_nothrow_awaitable);
            if (ec) {
                // A client that stalls mid-request gets a 408; an idle one is just closed.
                if (c.timed_out && !c.pending().empty() && !stopping_)
                    co_await reply_and_close(c, 408, "request timeout", stats_);
                co_return;
            }
            const bool first_bytes = c.pending().empty();
            c.buffer.resize(filled + n);
            state = c.parser.parse(c.pending());
            if (first_bytes && state == http::RequestParser::State::need_more && !c.parser.headers_complete())
                set_deadline(c, Clock::now() + limits_.header_timeout);
        }
        if (state == http::RequestParser::State::error) {
            const auto e = c.parser.error();
            co_await reply_and_close(c, status_for(e), core::message(e), stats_);
            co_return;
        }

        // A complete request: answer it. Handler time is not the client's (see watchdog).
        c.busy = true;
        const http::Request& request = c.parser.request();
        c.response.clear();
        Exchange ex{request, request.body, c.response, c.scratch, c.peer, request.method == http::Method::head};
        if (!pipeline_.run_now(ex))
            co_await pipeline_(ex);

        const bool keep_alive = request.keep_alive && !c.response.close && !stopping_;
        c.head.clear();
        c.response.write_head(c.head, request.version_minor, keep_alive);
        const Buffers buffers{
            asio::buffer(c.head.data(), c.head.size()),
            ex.head_only ? asio::const_buffer{} : asio::buffer(c.response.payload())};
        c.busy = false;
        std::error_code ec;
        const Buffers rest = c.socket.non_blocking() ? write_now(c.socket, buffers, ec) : buffers;
        if (!ec && asio::buffer_size(rest) > 0) {
            // Only a write the kernel cannot take at once waits for the client, so only it moves
            // the deadline (the common answer does no timer work).
            set_deadline(c, Clock::now() + limits_.write_timeout);
            auto [write_ec, n] = co_await asio::async_write(c.socket, rest, core::use_nothrow_awaitable);
            (void)n;
            ec = write_ec;
        }
        if (ec || !keep_alive) {
            std::error_code ignored;
            c.socket.shutdown(tcp::socket::shutdown_send, ignored);
            co_return;
        }

        c.response.trim(retained_bytes);
        c.scratch.trim();
        consume(c, c.parser.consumed());
    }
}

}  // namespace server
