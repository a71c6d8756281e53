#include "http/client.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace http {

using core::Errc;

namespace {

// First size of the receive buffer; it doubles up to Limits::max_message_bytes().
constexpr std::size_t initial_buffer = 16 * 1024;

Errc error_of(const std::error_code& ec) noexcept
{
    return ec == asio::error::timed_out ? Errc::timeout : Errc::io_error;
}

/// A failure before any answer byte that a fresh connection may not repeat: not our own
/// deadline, and not close() called while the request was in flight (the caller gave up).
bool retryable_before_answer(const std::error_code& ec) noexcept
{
    return ec != asio::error::timed_out && ec != asio::error::operation_aborted;
}

}  // namespace

std::optional<std::string_view> ClientResponse::header(std::string_view name) const noexcept
{
    for (const auto& [n, v] : headers)
        if (iequals(n, name))
            return v;
    return std::nullopt;
}

Client::Client(asio::any_io_executor ex, std::string host, std::string port, ClientOptions options)
    : ex_(std::move(ex)),
      host_(std::move(host)),
      port_(std::move(port)),
      options_(options),
      socket_(ex_),
      parser_(options.limits)
{
}

void Client::close() noexcept
{
    std::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
}

void Client::format_head(std::string_view method, std::string_view target,
                         std::span<const Header> headers, std::string_view body)
{
    head_.clear();
    head_.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ");
    // An IPv6 literal needs its brackets back in Host (RFC 3986 3.2.2).
    const bool ipv6 = host_.find(':') != std::string::npos;
    head_.append(ipv6 ? "[" : "").append(host_).append(ipv6 ? "]" : "");
    if (port_ != "80")
        head_.append(":").append(port_);
    head_.append("\r\n");
    for (const Header& h : headers)
        head_.append(h.name).append(": ").append(h.value).append("\r\n");
    if (!body.empty() || !(method == "GET" || method == "HEAD")) {
        std::array<char, 24> digits{};
        const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), body.size()).ptr;
        head_.append("Content-Length: ").append(digits.data(), end).append("\r\n");
    }
    head_.append("\r\n");
}

std::chrono::steady_clock::duration Client::within(std::chrono::milliseconds step, Deadline deadline) noexcept
{
    const auto left = deadline - std::chrono::steady_clock::now();
    return std::clamp<std::chrono::steady_clock::duration>(left, std::chrono::steady_clock::duration::zero(), step);
}

void Client::trim_buffer() noexcept
{
    if (in_.capacity() > options_.kept_buffer_bytes)
        std::vector<char>{}.swap(in_);
}

asio::awaitable<core::Result<void>> Client::connect(Deadline deadline)
{
    asio::ip::tcp::resolver resolver{ex_};
    auto [rec, endpoints] = co_await core::with_timeout(
        resolver.async_resolve(host_, port_, core::use_nothrow_awaitable),
        within(options_.connect_timeout, deadline));
    if (rec)
        co_return error_of(rec);
    auto [cec, endpoint] = co_await core::with_timeout(
        asio::async_connect(socket_, endpoints, core::use_nothrow_awaitable),
        within(options_.connect_timeout, deadline));
    if (cec) {
        close();
        co_return error_of(cec);
    }
    std::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);  // requests are single writes
    carried_ = false;
    co_return core::Result<void>{};
}

asio::awaitable<core::Result<asio::ip::address>> Client::local_address()
{
    if (!socket_.is_open()) {
        // A statement: see core/asio.hpp.
        const core::Result<void> c = co_await connect(std::chrono::steady_clock::now() + options_.request_timeout);
        if (!c)
            co_return c.error();
    }
    std::error_code ec;
    const auto local = socket_.local_endpoint(ec);
    if (ec) {
        close();
        co_return Errc::io_error;
    }
    co_return local.address();
}

asio::awaitable<core::Result<ClientResponse>> Client::request(std::string_view method,
                                                              std::string_view target,
                                                              std::span<const Header> headers,
                                                              std::string_view body)
{
    format_head(method, target, headers, body);
    const bool head = method == "HEAD";
    const Deadline deadline = std::chrono::steady_clock::now() + options_.request_timeout;
    for (;;) {
        // Only a connection that already carried a request may have been closed by the server
        // while idle; one that local_address() just opened has not.
        const bool reused = socket_.is_open() && carried_;
        if (!socket_.is_open()) {
            core::Result<void> c = co_await connect(deadline);
            if (!c)
                co_return c.error();
        }
        bool stale = false;
        core::Result<ClientResponse> r = co_await exchange(body, head, deadline, stale);
        // The server may close an idle kept-alive connection just as we reuse it.
        if (r || !stale || !reused)
            co_return r;
    }
}

asio::awaitable<core::Result<ClientResponse>> Client::exchange(std::string_view body, bool head,
                                                               Deadline deadline, bool& stale)
{
    const std::array<asio::const_buffer, 2> out{asio::buffer(head_), asio::buffer(body)};
    auto [wec, written] = co_await core::with_timeout(
        asio::async_write(socket_, out, core::use_nothrow_awaitable), within(options_.io_timeout, deadline));
    if (wec) {
        close();
        stale = retryable_before_answer(wec);
        co_return error_of(wec);
    }
    core::Result<ClientResponse> r = co_await receive(head, deadline, stale);
    carried_ = true;
    trim_buffer();
    co_return r;
}

asio::awaitable<core::Result<ClientResponse>> Client::receive(bool head, Deadline deadline, bool& stale)
{
    parser_.reset();
    parser_.set_head_request(head);
    const std::size_t cap = options_.limits.max_message_bytes();
    std::size_t size = 0;
    ResponseParser::State state = ResponseParser::State::need_more;
    while (state == ResponseParser::State::need_more) {
        if (size == in_.size()) {
            if (in_.size() >= cap) {  // unreachable while the parser honours its bound
                close();
                co_return Errc::body_too_large;
            }
            in_.resize(std::min(cap, std::max(initial_buffer, in_.size() * 2)));
        }
        auto [rec, n] = co_await core::with_timeout(
            socket_.async_read_some(asio::buffer(in_.data() + size, in_.size() - size),
                                    core::use_nothrow_awaitable),
            within(options_.io_timeout, deadline));
        if (rec == asio::error::eof && size > 0) {
            state = parser_.finish_eof();
            if (state != ResponseParser::State::done) {
                close();
                co_return Errc::io_error;  // closed mid-response
            }
            break;
        }
        if (rec) {
            close();
            stale = size == 0 && retryable_before_answer(rec);
            co_return error_of(rec);
        }
        size += n;
        state = parser_.parse({in_.data(), size});
    }
    if (state == ResponseParser::State::error) {
        close();
        co_return parser_.error();
    }

    const Response& r = parser_.response();
    ClientResponse response;
    response.status = r.status;
    response.headers.reserve(r.headers.size());
    for (const Header& h : r.headers)
        response.headers.emplace_back(h.name, h.value);
    response.body.assign(r.body);
    // Bytes past the response were never asked for: the connection cannot be trusted.
    if (!r.keep_alive || parser_.consumed() != size)
        close();
    co_return response;
}

}  // namespace http
