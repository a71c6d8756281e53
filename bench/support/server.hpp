#pragma once

// A server without sockets for handler and middleware benchmarks: raw request bytes go through
// the HTTP parser, the middleware chain, the router, a handler and the memory storage to
// response bytes, as on a connection's strand.
//
// Setup and checks use server::OfflineConnection. The timed loop does not: OfflineConnection
// runs a fresh io_context::run() per request, and Asio keeps its recycling cache of coroutine
// frames in a per-run() thread_info, so every request there pays ~11 frame allocations that a
// live connection (one run() for the server's life) does not. The loop therefore runs inside one
// long-lived run(), doing per request what Listener::serve does.

#include "core/asio.hpp"
#include "http/parser.hpp"
#include "server/config.hpp"
#include "server/exchange.hpp"
#include "server/offline.hpp"
#include "server/pipeline.hpp"
#include "storage/memory.hpp"
#include "support/allocations.hpp"
#include "support/check.hpp"

#include <benchmark/benchmark.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace bench {

/// Storage, pipeline and one connection. Not thread-safe (one connection).
struct OfflineServer {
    /// `self`, when given, counts every request as the daemon does (server/self_metrics.hpp).
    explicit OfflineServer(server::Config config = quiet_config(), server::SelfMetrics* self = nullptr)
        : config_(std::move(config)),
          pipeline_(server::make_pipeline(config_, store, {}, self)),
          connection_(std::make_unique<server::OfflineConnection>(*pipeline_))
    {
    }

    /// No access log (it would time stderr), no snapshots.
    static server::Config quiet_config()
    {
        server::Config c;
        c.access_log = false;
        c.store_file.clear();
        return c;
    }

    server::OfflineConnection::Answer handle(std::string_view raw) { return connection_->handle(raw); }
    const server::Pipeline& pipeline() const { return *pipeline_; }
    http::Limits limits() const { return config_.connection_limits().http; }

    /// Sends `raw` once and ends the binary unless it is answered with `status`.
    server::OfflineConnection::Answer expect(std::string_view benchmark, std::string_view raw, int status = 200)
    {
        auto answer = handle(raw);
        if (answer.status != status)
            fail(benchmark, "answered " + std::to_string(answer.status) + " instead of " + std::to_string(status) +
                                ": " + std::string{answer.body.substr(0, 200)});
        return answer;
    }

    storage::MemoryStorage store;

private:
    server::Config config_;
    std::unique_ptr<server::Pipeline> pipeline_;
    std::unique_ptr<server::OfflineConnection> connection_;
};

/// Times `requests` (in turn) through `server`'s pipeline inside one long-lived
/// io_context::run(), per request what Listener::serve does (parse, run the chain, format the
/// head). Items are requests, bytes request bytes; allocations per request are reported. The
/// caller checks the answers first (`expect`); a request that stops parsing ends the binary.
inline void time_requests(benchmark::State& state, OfflineServer& server, std::span<const std::string> requests)
{
    asio::io_context ioc;
    std::int64_t bytes = 0;
    auto loop = [&]() -> asio::awaitable<void> {
        http::RequestParser parser{server.limits()};
        // Two buffers: each request is copied in ("received") while the one before it is handled,
        // as the kernel fills a socket buffer long before the parser reads it. Copied right
        // before parsing, the parser's first 16-byte loads would wait for memcpy's stores to
        // drain (store forwarding fails across them), a stall no live connection has.
        std::string buffers[2];
        for (const std::string& raw : requests)  // no allocation in the timed loop
            for (std::string& b : buffers)
                b.reserve(raw.size());
        buffers[0].assign(requests[0]);
        server::Scratch scratch;
        server::Response response;
        fmt::memory_buffer head;
        std::size_t next = requests.size() == 1 ? 0 : 1;
        std::size_t turn = 0;
        const auto before = thread_allocations();
        for (auto _ : state) {
            std::string& buffer = buffers[turn];
            turn ^= 1;
            bytes += static_cast<std::int64_t>(buffer.size());
            parser.reset();
            if (parser.parse({buffer.data(), buffer.size()}) != http::RequestParser::State::done)
                fail("time_requests", "the request does not parse");
            buffers[turn].assign(requests[next]);  // the next request arrives
            next = next + 1 == requests.size() ? 0 : next + 1;
            const http::Request& request = parser.request();
            response.clear();
            server::Exchange ex{request, request.body, response, scratch, "bench", false};
            if (!server.pipeline().run_now(ex))
                co_await server.pipeline()(ex);
            head.clear();
            response.write_head(head, request.version_minor, request.keep_alive);
            benchmark::DoNotOptimize(head.data());
            benchmark::DoNotOptimize(response.payload().data());
            response.trim(server::retained_bytes);  // as Listener::serve does once the answer is written
            scratch.trim();
        }
        report_thread_allocations(state, before);
    };
    asio::co_spawn(ioc, loop(), [](std::exception_ptr e) {
        if (e)
            std::rethrow_exception(e);
    });
    ioc.run();
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(bytes);
}

inline void time_requests(benchmark::State& state, OfflineServer& server, const std::string& raw)
{
    time_requests(state, server, std::span<const std::string>{&raw, 1});
}

/// A JSON array of `n` updates named batch1..batchN, alternating gauges and counters, as
/// bench/wrk/updates.lua and agents send them.
inline std::string batch_json(std::size_t n, std::string_view prefix = "batch")
{
    std::string s = "[";
    for (std::size_t i = 1; i <= n; ++i) {
        if (i > 1)
            s += ',';
        const std::string id = std::string{prefix} + std::to_string(i);
        if (i % 2 == 0)
            s += R"({"id":")" + id + R"(","type":"counter","delta":)" + std::to_string(i) + "}";
        else
            s += R"({"id":")" + id + R"(","type":"gauge","value":)" + std::to_string(i) + ".25}";
    }
    s += ']';
    return s;
}

}  // namespace bench
