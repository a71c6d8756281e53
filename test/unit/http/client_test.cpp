#include "http/client.hpp"

#include "http/parser.hpp"

#include "support/run.hpp"

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using asio::ip::tcp;
using core::Errc;
using http::Client;
using http::ClientResponse;
using namespace std::chrono_literals;

namespace {

// A request as the scripted peer received it.
struct Received {
    std::string method, target, body;
    std::vector<std::pair<std::string, std::string>> headers;

    std::optional<std::string> header(std::string_view name) const
    {
        for (const auto& [n, v] : headers)
            if (http::iequals(n, name))
                return v;
        return std::nullopt;
    }
};

// Reads one request with our own parser; nullopt when the client closed first.
asio::awaitable<std::optional<Received>> receive(tcp::socket& socket)
{
    std::vector<char> buffer(64 * 1024);
    std::size_t size = 0;
    http::RequestParser parser;
    for (;;) {
        auto [ec, n] = co_await socket.async_read_some(
            asio::buffer(buffer.data() + size, buffer.size() - size), core::use_nothrow_awaitable);
        if (ec)
            co_return std::nullopt;
        size += n;
        const auto state = parser.parse({buffer.data(), size});
        REQUIRE(state != http::RequestParser::State::error);
        if (state == http::RequestParser::State::done)
            break;
    }
    const http::Request& r = parser.request();
    Received received{std::string(r.method_text), std::string(r.target), std::string(r.body), {}};
    for (const http::Header& h : r.headers)
        received.headers.emplace_back(h.name, h.value);
    co_return received;
}

// Writes `bytes` in separate writes of at most `piece` bytes.
asio::awaitable<void> send(tcp::socket& socket, std::string_view bytes, std::size_t piece = 1 << 20)
{
    while (!bytes.empty()) {
        const std::string_view part = bytes.substr(0, piece);
        co_await asio::async_write(socket, asio::buffer(part), asio::use_awaitable);
        bytes.remove_prefix(part.size());
    }
}

// Waits until the client closes its side.
asio::awaitable<void> drain(tcp::socket& socket)
{
    std::array<char, 256> sink{};
    for (;;) {
        auto [ec, n] = co_await socket.async_read_some(asio::buffer(sink), core::use_nothrow_awaitable);
        if (ec)
            co_return;
    }
}

// What the peer does with one accepted connection.
using Script = std::function<asio::awaitable<void>(tcp::socket&)>;

// Reads one request and fails the test unless there is one.
asio::awaitable<Received> expect_request(tcp::socket& socket)
{
    std::optional<Received> received = co_await receive(socket);
    REQUIRE(received);
    co_return std::move(*received);
}

// A scripted server on 127.0.0.1: accepts one connection per script, in order, and runs the
// script on it.
asio::awaitable<void> serve(tcp::acceptor acceptor, std::vector<Script> scripts)
{
    for (Script& script : scripts) {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        co_await script(socket);
    }
}

// Runs `client(port)` against a peer serving `scripts`; returns when both have finished.
asio::awaitable<void> against(std::vector<Script> scripts,
                              std::function<asio::awaitable<void>(std::string port)> client)
{
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor acceptor{ex, {asio::ip::make_address("127.0.0.1"), 0}};
    std::string port = std::to_string(acceptor.local_endpoint().port());
    co_await (serve(std::move(acceptor), std::move(scripts)) && client(std::move(port)));
}

constexpr std::string_view ok_response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// Serves `n` requests on one connection with ok_response, then waits for the client to close.
Script serve_ok(int n)
{
    return [n](tcp::socket& socket) -> asio::awaitable<void> {
        for (int i = 0; i < n; ++i) {
            co_await expect_request(socket);
            co_await send(socket, ok_response);
        }
        co_await drain(socket);
    };
}

}  // namespace

TEST_CASE("the client sends Host, Content-Length and the body, and reads a split response")
{
    const Script peer = [](tcp::socket& socket) -> asio::awaitable<void> {
        const Received seen = co_await expect_request(socket);
        CHECK(seen.method == "POST");
        CHECK(seen.target == "/updates/");
        CHECK(seen.body == "[1,2]");
        CHECK(seen.header("Host") ==
              "127.0.0.1:" + std::to_string(socket.local_endpoint().port()));
        CHECK(seen.header("Content-Length") == "5");
        CHECK(seen.header("X-Real-IP") == "1.2.3.4");
        co_await send(socket,
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Content-Length: 11\r\nHashSHA256: abc\r\n\r\n{\"id\":\"x\"}\n",
                      3);
        co_await drain(socket);
    };
    test::run(against({peer}, [](std::string port) -> asio::awaitable<void> {
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port};
        const http::Header headers[] = {{"Content-Type", "application/json"},
                                        {"X-Real-IP", "1.2.3.4"}};
        auto r = co_await client.request("POST", "/updates/", headers, "[1,2]");
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body == "{\"id\":\"x\"}\n");
        CHECK(r->header("hashsha256") == "abc");
        CHECK(r->header("content-type") == "application/json");
        CHECK(!r->header("Connection"));
    }));
}

TEST_CASE("a GET without a body sends no Content-Length")
{
    const Script peer = [](tcp::socket& socket) -> asio::awaitable<void> {
        const Received seen = co_await expect_request(socket);
        CHECK(!seen.header("Content-Length"));
        co_await send(socket, ok_response);
        co_await drain(socket);
    };
    test::run(against({peer}, [](std::string port) -> asio::awaitable<void> {
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port};
        auto r = co_await client.request("GET", "/", {}, "");
        REQUIRE(r);
    }));
}

TEST_CASE("the client reads a chunked response")
{
    const Script peer = [](tcp::socket& socket) -> asio::awaitable<void> {
        co_await expect_request(socket);
        co_await send(socket,
                      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "4\r\nabcd\r\n3;x=1\r\nefg\r\n0\r\n\r\n",
                      5);
        co_await drain(socket);
    };
    test::run(against({peer}, [](std::string port) -> asio::awaitable<void> {
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port};
        auto r = co_await client.request("GET", "/", {}, "");
        REQUIRE(r);
        CHECK(r->body == "abcdefg");
    }));
}

TEST_CASE("the client reuses a kept-alive connection")
{
    // One connection only: a second connect would never be accepted.
    test::run(against({serve_ok(3)}, [](std::string port) -> asio::awaitable<void> {
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port};
        for (int i = 0; i < 3; ++i) {
            auto r = co_await client.request("GET", "/ping", {}, "");
            REQUIRE(r);
            CHECK(r->body == "ok");
        }
    }));
}

TEST_CASE("the client reconnects when the server closed the kept-alive connection")
{
    const Script close_after_one = [](tcp::socket& socket) -> asio::awaitable<void> {
        co_await expect_request(socket);
        co_await send(socket, ok_response);
        socket.close();  // as an idle timeout would, without saying so
    };
    test::run(against({close_after_one, serve_ok(1)}, [](std::string port) -> asio::awaitable<void> {
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port};
        auto first = co_await client.request("POST", "/update/counter/c/1", {}, "");
        REQUIRE(first);
        auto second = co_await client.request("POST", "/update/counter/c/1", {}, "");
        REQUIRE(second);
        CHECK(second->body == "ok");
    }));
}

TEST_CASE("the client honours Connection: close from the server")
{
    const Script close_after_one = [](tcp::socket& socket) -> asio::awaitable<void> {
        co_await expect_request(socket);
        co_await send(socket, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        co_await drain(socket);  // the client must close first
    };
    test::run(against({close_after_one, close_after_one},
                      [](std::string port) -> asio::awaitable<void> {
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port};
        for (int i = 0; i < 2; ++i) {
            auto r = co_await client.request("GET", "/", {}, "");
            REQUIRE(r);
            CHECK(r->body.empty());
        }
    }));
}

TEST_CASE("a fresh connection closed without an answer is an I/O error, not retried")
{
    const Script hang_up = [](tcp::socket& socket) -> asio::awaitable<void> {
        co_await expect_request(socket);
        socket.close();
    };
    test::run(against({hang_up}, [](std::string port) -> asio::awaitable<void> {
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port};
        auto r = co_await client.request("GET", "/", {}, "");
        CHECK(r.error() == Errc::io_error);
    }));
}

TEST_CASE("a response cut short by the server is an I/O error")
{
    const Script cut = [](tcp::socket& socket) -> asio::awaitable<void> {
        co_await expect_request(socket);
        co_await send(socket, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        socket.shutdown(tcp::socket::shutdown_send);
        co_await drain(socket);
    };
    test::run(against({cut}, [](std::string port) -> asio::awaitable<void> {
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port};
        auto r = co_await client.request("GET", "/", {}, "");
        CHECK(r.error() == Errc::io_error);
    }));
}

TEST_CASE("a body delimited by the server's close is complete")
{
    const Script until_close = [](tcp::socket& socket) -> asio::awaitable<void> {
        co_await expect_request(socket);
        co_await send(socket, "HTTP/1.0 200 OK\r\n\r\nuntil the end");
        socket.shutdown(tcp::socket::shutdown_send);
        co_await drain(socket);
    };
    test::run(against({until_close}, [](std::string port) -> asio::awaitable<void> {
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port};
        auto r = co_await client.request("GET", "/", {}, "");
        REQUIRE(r);
        CHECK(r->body == "until the end");
    }));
}

TEST_CASE("a malformed response is a bad_request and closes the connection")
{
    const Script malformed = [](tcp::socket& socket) -> asio::awaitable<void> {
        co_await expect_request(socket);
        co_await send(socket, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
        co_await drain(socket);
    };
    test::run(against({malformed, serve_ok(1)}, [](std::string port) -> asio::awaitable<void> {
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port};
        auto bad = co_await client.request("GET", "/", {}, "");
        CHECK(bad.error() == Errc::bad_request);
        auto good = co_await client.request("GET", "/", {}, "");  // on a new connection
        REQUIRE(good);
        CHECK(good->body == "ok");
    }));
}

TEST_CASE("a response over the body limit is refused")
{
    const Script large = [](tcp::socket& socket) -> asio::awaitable<void> {
        co_await expect_request(socket);
        co_await send(socket, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        co_await drain(socket);
    };
    test::run(against({large}, [](std::string port) -> asio::awaitable<void> {
        http::ClientOptions options;
        options.limits.max_body = 99;
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port, options};
        auto r = co_await client.request("GET", "/", {}, "");
        CHECK(r.error() == Errc::body_too_large);
    }));
}

TEST_CASE("a HEAD response has no body even with a Content-Length")
{
    const Script peer = [](tcp::socket& socket) -> asio::awaitable<void> {
        co_await expect_request(socket);
        co_await send(socket, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n");
        co_await expect_request(socket);  // the connection is still in step
        co_await send(socket, ok_response);
        co_await drain(socket);
    };
    test::run(against({peer}, [](std::string port) -> asio::awaitable<void> {
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port};
        auto head = co_await client.request("HEAD", "/", {}, "");
        REQUIRE(head);
        CHECK(head->body.empty());
        CHECK(head->header("Content-Length") == "50");
        auto get = co_await client.request("GET", "/", {}, "");
        REQUIRE(get);
        CHECK(get->body == "ok");
    }));
}

TEST_CASE("a peer that never answers times out")
{
    const Script silent = [](tcp::socket& socket) -> asio::awaitable<void> {
        co_await expect_request(socket);
        co_await drain(socket);  // until the client gives up
    };
    test::run(against({silent}, [](std::string port) -> asio::awaitable<void> {
        http::ClientOptions options;
        options.io_timeout = 200ms;
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port, options};
        auto r = co_await client.request("GET", "/", {}, "");
        CHECK(r.error() == Errc::timeout);
    }));
}

TEST_CASE("an answer trickling in times out at the request deadline, though no single read is slow")
{
    const Script drip = [](tcp::socket& socket) -> asio::awaitable<void> {
        co_await expect_request(socket);
        co_await send(socket, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        asio::steady_timer pause{socket.get_executor()};
        for (int i = 0; i < 1000; ++i) {  // until the client hangs up
            pause.expires_after(20ms);
            co_await pause.async_wait(asio::use_awaitable);
            auto [ec, n] = co_await asio::async_write(socket, asio::buffer(" ", 1), core::use_nothrow_awaitable);
            if (ec)
                co_return;
        }
    };
    test::run(against({drip}, [](std::string port) -> asio::awaitable<void> {
        http::ClientOptions options;
        options.io_timeout = 10s;
        options.request_timeout = 300ms;
        Client client{co_await asio::this_coro::executor, "127.0.0.1", port, options};
        auto r = co_await client.request("GET", "/", {}, "");
        CHECK(r.error() == Errc::timeout);
    }));
}

TEST_CASE("a refused connection is an I/O error")
{
    test::run([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::string port;
        {
            tcp::acceptor closed{ex, {asio::ip::make_address("127.0.0.1"), 0}};
            port = std::to_string(closed.local_endpoint().port());
        }
        Client client{ex, "127.0.0.1", port};
        auto r = co_await client.request("GET", "/", {}, "");
        CHECK(r.error() == Errc::io_error);
    }());
}
