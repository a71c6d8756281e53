#include "agent/sender.hpp"

#include "codec/gzip.hpp"
#include "codec/hmac.hpp"
#include "http/parser.hpp"
#include "support/run.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace std::chrono_literals;
using asio::ip::tcp;

namespace {

/// What the peer saw of one request.
struct Seen {
    std::string target;
    std::string content_type;
    std::string content_encoding;
    std::string hash;
    std::string real_ip;
    std::string body;  // as received: gzipped
};

/// A scripted HTTP server on a loopback port: answers the n-th request with statuses[n]
/// (200 once the script is exhausted), keeping the connection alive. Runs on the test's thread.
class Peer {
public:
    Peer(asio::any_io_executor ex, std::vector<int> statuses)
        : acceptor_(ex, tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}),
          statuses_(std::move(statuses)),
          seen_signal_(ex)
    {
        seen_signal_.expires_at(std::chrono::steady_clock::time_point::max());
    }

    unsigned short port() const { return acceptor_.local_endpoint().port(); }
    const std::vector<Seen>& seen() const { return seen_; }
    int connections() const { return connections_; }

    /// Serves until `stop`.
    void start()
    {
        asio::co_spawn(acceptor_.get_executor(), serve(), [this](std::exception_ptr e) {
            finished_ = true;
            stopped_signal_.cancel();
            if (e)
                std::rethrow_exception(e);
        });
    }

    /// Closes the listener and the connection, and waits until the serving coroutine has ended
    /// (it refers to this object).
    asio::awaitable<void> stop()
    {
        acceptor_.close();
        socket_.close();
        while (!finished_) {
            stopped_signal_.expires_at(std::chrono::steady_clock::time_point::max());
            co_await stopped_signal_.async_wait(core::use_nothrow_awaitable);
        }
    }

    /// Waits until `n` requests have been seen.
    asio::awaitable<void> wait_for(std::size_t n)
    {
        while (seen_.size() < n) {
            seen_signal_.expires_at(std::chrono::steady_clock::time_point::max());
            co_await seen_signal_.async_wait(core::use_nothrow_awaitable);
        }
    }

private:
    asio::awaitable<void> serve()
    {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(core::use_nothrow_awaitable);
            if (ec)
                co_return;
            ++connections_;
            socket_ = std::move(socket);
            co_await serve_connection();
        }
    }

    asio::awaitable<void> serve_connection()
    {
        std::vector<char> in(64 * 1024);
        std::size_t size = 0;
        http::RequestParser parser;
        for (;;) {
            auto [ec, n] = co_await socket_.async_read_some(asio::buffer(in.data() + size, in.size() - size),
                                                            core::use_nothrow_awaitable);
            if (ec)
                co_return;
            size += n;
            const auto state = parser.parse({in.data(), size});
            if (state == http::RequestParser::State::need_more)
                continue;
            REQUIRE(state == http::RequestParser::State::done);
            const http::Request& r = parser.request();
            seen_.push_back({std::string{r.target}, std::string{r.header("Content-Type").value_or("")},
                             std::string{r.header("Content-Encoding").value_or("")},
                             std::string{r.header("HashSHA256").value_or("")},
                             std::string{r.header("X-Real-IP").value_or("")}, std::string{r.body}});
            const int status = seen_.size() <= statuses_.size() ? statuses_[seen_.size() - 1] : 200;
            const std::string body = status == 400 ? "bad metric name\n" : "[]";
            const std::string response = "HTTP/1.1 " + std::to_string(status) + " Scripted\r\nContent-Length: " +
                                         std::to_string(body.size()) + "\r\n\r\n" + body;
            const std::size_t consumed = parser.consumed();
            std::copy(in.begin() + static_cast<std::ptrdiff_t>(consumed),
                      in.begin() + static_cast<std::ptrdiff_t>(size), in.begin());
            size -= consumed;
            parser.reset();
            seen_signal_.cancel();
            auto [wec, written] = co_await asio::async_write(socket_, asio::buffer(response), core::use_nothrow_awaitable);
            if (wec)
                co_return;
        }
    }

    tcp::acceptor acceptor_;
    tcp::socket socket_{acceptor_.get_executor()};
    std::vector<int> statuses_;
    std::vector<Seen> seen_;
    asio::steady_timer seen_signal_;
    asio::steady_timer stopped_signal_{acceptor_.get_executor()};
    bool finished_ = false;
    int connections_ = 0;
};

constexpr std::chrono::milliseconds fast_retries[] = {1ms, 1ms, 1ms};

agent::SenderOptions options_for(unsigned short port, std::string key = {})
{
    agent::SenderOptions o;
    o.server = {"127.0.0.1", std::to_string(port)};
    o.key = std::move(key);
    o.client.connect_timeout = 2s;
    o.client.io_timeout = 2s;
    o.retry_delays = fast_retries;
    return o;
}

agent::Batch make_batch(std::uint64_t sequence)
{
    agent::MetricTable table;
    table.set_gauge("Alloc", 1.5);
    table.add_counter("PollCount", 3);
    agent::Batch b = table.take_batch();
    b.sequence = sequence;
    return b;
}

std::string gunzip(std::string_view gz)
{
    codec::Gzip gzip;
    std::string out;
    REQUIRE(gzip.decompress(gz, out, 1 << 20));
    return out;
}

asio::awaitable<void> post_gzipped_signed_with_address()
{
    auto ex = co_await asio::this_coro::executor;
    Peer peer{ex, {}};
    peer.start();
    agent::Sender sender{ex, options_for(peer.port(), "secret")};
    const agent::Batch batch = make_batch(1);

    const bool first = co_await sender.deliver(batch);
    CHECK(first);
    const bool second = co_await sender.deliver(make_batch(2));
    CHECK(second);
    co_await peer.stop();

    REQUIRE(peer.seen().size() == 2);
    const Seen& s = peer.seen()[0];
    CHECK(s.target == "/updates/");
    CHECK(s.content_type == "application/json");
    CHECK(s.content_encoding == "gzip");
    CHECK(gunzip(s.body) == batch.body);
    CHECK(s.hash == std::string{codec::view(codec::hmac_sha256_hex("secret", s.body))});
    CHECK(s.real_ip == "127.0.0.1");
    CHECK(peer.connections() == 1);  // kept alive
}

asio::awaitable<void> post_unsigned_without_key()
{
    auto ex = co_await asio::this_coro::executor;
    Peer peer{ex, {}};
    peer.start();
    agent::Sender sender{ex, options_for(peer.port())};
    const bool delivered = co_await sender.deliver(make_batch(1));
    CHECK(delivered);
    co_await peer.stop();
    REQUIRE(peer.seen().size() == 1);
    CHECK(peer.seen()[0].hash.empty());
}

asio::awaitable<void> retry_5xx_until_taken()
{
    auto ex = co_await asio::this_coro::executor;
    Peer peer{ex, {500, 503}};
    peer.start();
    agent::Sender sender{ex, options_for(peer.port(), "k")};
    const bool delivered = co_await sender.deliver(make_batch(1));
    CHECK(delivered);
    co_await peer.stop();
    REQUIRE(peer.seen().size() == 3);
    CHECK(peer.seen()[0].body == peer.seen()[2].body);
    CHECK(peer.seen()[0].hash == peer.seen()[2].hash);
}

asio::awaitable<void> give_up_after_three_retries()
{
    auto ex = co_await asio::this_coro::executor;
    Peer peer{ex, {500, 500, 500, 500, 500}};
    peer.start();
    agent::Sender sender{ex, options_for(peer.port())};
    const bool first = co_await sender.deliver(make_batch(1));
    CHECK(!first);
    CHECK(peer.seen().size() == 4);
    const bool next = co_await sender.deliver(make_batch(2));
    CHECK(next);  // the next batch starts afresh
    co_await peer.stop();
}

asio::awaitable<void> reject_4xx_without_retry()
{
    auto ex = co_await asio::this_coro::executor;
    Peer peer{ex, {400}};
    peer.start();
    agent::Sender sender{ex, options_for(peer.port())};
    const bool delivered = co_await sender.deliver(make_batch(1));
    CHECK(!delivered);
    co_await peer.stop();
    CHECK(peer.seen().size() == 1);
}

asio::awaitable<void> retry_unreachable_server()
{
    auto ex = co_await asio::this_coro::executor;
    unsigned short port = 0;
    {
        tcp::acceptor closed{ex, tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
        port = closed.local_endpoint().port();
    }
    agent::Sender sender{ex, options_for(port)};
    const bool delivered = co_await sender.deliver(make_batch(1));
    CHECK(!delivered);
}

// `peer` and `sender` belong to the caller, which outlives this coroutine.
asio::awaitable<void> stop_after_first_answer(Peer& peer, agent::Sender& sender)
{
    co_await peer.wait_for(1);
    // Let the sender read the 500 and start its hour-long wait.
    for (int i = 0; i < 20; ++i)
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    sender.stop();
}

asio::awaitable<void> stop_cancels_retry_wait()
{
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    Peer peer{ex, {500, 500}};
    peer.start();
    static constexpr std::chrono::milliseconds hour[] = {std::chrono::hours{1}};
    auto options = options_for(peer.port());
    options.retry_delays = hour;
    agent::Sender sender{ex, options};
    // Without stop() this would wait an hour; with it, at most one more attempt follows.
    const bool delivered = co_await (sender.deliver(make_batch(1)) && stop_after_first_answer(peer, sender));
    CHECK(!delivered);
    CHECK(peer.seen().size() >= 1);
    CHECK(peer.seen().size() <= 2);
    co_await peer.stop();
}

asio::awaitable<void> drain_queue_and_hand_back()
{
    auto ex = co_await asio::this_coro::executor;
    Peer peer{ex, {400}};
    peer.start();
    agent::Sender sender{ex, options_for(peer.port())};
    agent::BatchQueue queue{ex, 4, 1};
    CHECK(!queue.push(make_batch(1)));
    CHECK(!queue.push(make_batch(2)));
    queue.close();
    std::vector<std::uint64_t> undelivered;
    co_await sender.run(queue, [&](const agent::Batch& b) { undelivered.push_back(b.sequence); });
    co_await peer.stop();
    CHECK(peer.seen().size() == 2);
    CHECK(undelivered == std::vector<std::uint64_t>{1});
}

}  // namespace

TEST_CASE("a batch is POSTed to /updates/ gzipped, signed and with the agent's address")
{
    test::run(post_gzipped_signed_with_address());
}

TEST_CASE("without a key no HashSHA256 is sent")
{
    test::run(post_unsigned_without_key());
}

TEST_CASE("a 5xx is retried with the same bytes until the server takes the batch")
{
    test::run(retry_5xx_until_taken());
}

TEST_CASE("a batch that keeps failing is given up after three retries")
{
    test::run(give_up_after_three_retries());
}

TEST_CASE("a 4xx is not retried")
{
    test::run(reject_4xx_without_retry());
}

TEST_CASE("an unreachable server is retried, then the batch is given up")
{
    test::run(retry_unreachable_server());
}

TEST_CASE("stop ends a retry wait at once, and the batch is given up")
{
    test::run(stop_cancels_retry_wait());
}

TEST_CASE("a sender drains its queue and hands back what it could not deliver")
{
    test::run(drain_queue_and_hand_back());
}
