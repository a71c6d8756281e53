// trivial-server: the load-test baseline. The same threading model as metrics-server (one
// io_context run by N threads, one coroutine per connection on its own strand, keep-alive and
// pipelining), but every request gets the same fixed answer: what is left when the parser,
// middleware, router, handlers and storage cost nothing. tools/loadtest.sh compares against it.
//
//   trivial-server [-a host:port] [-threads N]     (defaults: 127.0.0.1:18081, 1 thread)
#include "core/asio.hpp"

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using asio::ip::tcp;

constexpr std::string_view answer =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nok";
constexpr std::size_t initial_buffer = 8 * 1024;
constexpr std::size_t max_request = 64 << 20;

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return (x | 0x20) == (y | 0x20);
           });
}

/// Length of the first complete request in `data` (head and Content-Length body), 0 when more
/// bytes are needed. Just enough HTTP to frame wrk's keep-alive requests; -1 for nonsense.
long long request_length(std::string_view data)
{
    const auto end = data.find("\r\n\r\n");
    if (end == std::string_view::npos)
        return 0;
    const std::string_view head = data.substr(0, end + 2);
    std::size_t body = 0;
    for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos && pos + 2 < head.size();) {
        const std::size_t next = head.find("\r\n", pos + 2);
        const std::string_view line = head.substr(pos + 2, next - pos - 2);
        const auto colon = line.find(':');
        if (colon != std::string_view::npos && iequals(line.substr(0, colon), "content-length")) {
            std::string_view v = line.substr(colon + 1);
            while (!v.empty() && v.front() == ' ')
                v.remove_prefix(1);
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), body);
            if (ec != std::errc{} || body > max_request)
                return -1;
        }
        pos = next;
    }
    const std::size_t total = end + 4 + body;
    return total <= data.size() ? static_cast<long long>(total) : 0;
}

asio::awaitable<void> run_connection(tcp::socket socket)
{
    std::vector<char> buffer(initial_buffer);
    std::size_t filled = 0;
    for (;;) {
        const long long n = request_length({buffer.data(), filled});
        if (n < 0)
            co_return;
        if (n == 0) {
            if (filled == buffer.size()) {
                if (buffer.size() >= max_request)
                    co_return;
                buffer.resize(buffer.size() * 2);
            }
            auto [ec, got] = co_await socket.async_read_some(asio::buffer(buffer.data() + filled, buffer.size() - filled),
                                                             core::use_nothrow_awaitable);
            if (ec)
                co_return;
            filled += got;
            continue;
        }
        // One write per request, as metrics-server does.
        auto [ec, written] = co_await asio::async_write(socket, asio::buffer(answer), core::use_nothrow_awaitable);
        (void)written;
        if (ec)
            co_return;
        const auto consumed = static_cast<std::size_t>(n);
        std::memmove(buffer.data(), buffer.data() + consumed, filled - consumed);
        filled -= consumed;
    }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor)
{
    auto& ioc = static_cast<asio::io_context&>((co_await asio::this_coro::executor).context());
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(ioc), core::use_nothrow_awaitable);
        if (ec) {
            if (ec == asio::error::operation_aborted)
                co_return;
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        const auto executor = socket.get_executor();
        asio::co_spawn(executor, run_connection(std::move(socket)), [](std::exception_ptr e) {
            if (!e)
                return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                std::fprintf(stderr, "trivial-server: connection error: %s\n", ex.what());
            }
        });
    }
}

[[noreturn]] void usage()
{
    std::fprintf(stderr, "usage: trivial-server [-a host:port] [-threads N]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv)
{
    std::string address = "127.0.0.1:18081";
    int threads = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (i + 1 >= argc)
            usage();
        if (arg == "-a")
            address = argv[++i];
        else if (arg == "-threads")
            threads = std::max(1, std::atoi(argv[++i]));
        else
            usage();
    }
    const auto colon = address.rfind(':');
    if (colon == std::string::npos)
        usage();
    std::error_code ec;
    const auto host = asio::ip::make_address(address.substr(0, colon), ec);
    if (ec)
        usage();
    const auto port = static_cast<unsigned short>(std::atoi(address.c_str() + colon + 1));

    std::signal(SIGPIPE, SIG_IGN);
    asio::io_context ioc{threads};
    tcp::acceptor acceptor{ioc};
    const tcp::endpoint endpoint{host, port};
    try {
        acceptor.open(endpoint.protocol());
        acceptor.set_option(asio::socket_base::reuse_address(true));
        acceptor.bind(endpoint);
        acceptor.listen(asio::socket_base::max_listen_connections);
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "trivial-server: cannot listen on %s: %s\n", address.c_str(), e.what());
        return 1;
    }
    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    signals.async_wait([&](const std::error_code&, int) {
        acceptor.close();
        ioc.stop();
    });
    asio::co_spawn(ioc, accept_loop(acceptor), asio::detached);
    std::fprintf(stderr, "trivial-server listening on %s with %d threads\n", address.c_str(), threads);

    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i)
        pool.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto& t : pool)
        t.join();
    return 0;
}
