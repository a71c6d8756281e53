// Agent pipeline: the seed's internal/worker benchmarks. The Go agent had a worker pool; ours has
// RATE_LIMIT sender coroutines fed by a bounded BatchQueue on the agent's single-threaded
// io_context. The network is left out: these time what the agent's own CPU does per report.
#include "agent/batch_queue.hpp"
#include "agent/collectors.hpp"
#include "agent/sender.hpp"
#include "codec/hmac.hpp"
#include "support/agent.hpp"
#include "support/allocations.hpp"
#include "support/check.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

namespace {

/// Ends the binary if a consumer coroutine throws: a benchmark must not time a broken pipeline.
void rethrow(std::exception_ptr e)
{
    if (e)
        std::rethrow_exception(e);
}

/// A report body from the real collectors of this process and machine.
agent::Batch collected_batch()
{
    agent::MetricTable table;
    agent::ProcessCollector process;
    agent::SystemCollector system;
    agent::RandomCollector random;
    bench::require(process.collect(table) && system.collect(table), "worker", "the collectors read /proc");
    random.collect(table);
    table.add_counter("PollCount", 1);
    return table.take_batch();
}

/// What the agent builds at start for RATE_LIMIT = N: the queue and N senders.
void BM_WorkerPoolCreation(benchmark::State& state)
{
    const auto n = static_cast<std::size_t>(state.range(0));
    asio::io_context ioc;
    agent::SenderOptions options;
    options.server = {"127.0.0.1", "8080"};
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        agent::BatchQueue queue{ioc.get_executor(), 16, n};
        std::vector<std::unique_ptr<agent::Sender>> senders;
        senders.reserve(n);
        for (std::size_t i = 0; i < n; ++i)
            senders.push_back(std::make_unique<agent::Sender>(ioc.get_executor(), options));
        benchmark::DoNotOptimize(senders.data());
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WorkerPoolCreation)->Arg(1)->Arg(4);

/// One batch through the queue to a waiting sender coroutine and back (the batch is reused, so
/// only the queue's own cost is timed).
void BM_MetricSubmission(benchmark::State& state)
{
    asio::io_context ioc;
    auto work = asio::make_work_guard(ioc);
    agent::BatchQueue queue{ioc.get_executor(), 16, 1};
    std::optional<agent::Batch> received;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            while (auto batch = co_await queue.pop())
                received = std::move(batch);
        },
        rethrow);
    agent::Batch batch = collected_batch();
    const auto sequence = batch.sequence;
    (void)queue.push(std::move(batch));
    ioc.poll();
    bench::require(received && received->sequence == sequence, "BM_MetricSubmission", "the sender gets the batch");
    batch = std::move(*received);
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        (void)queue.push(std::move(batch));
        ioc.poll();
        batch = std::move(*received);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
    queue.close();
    ioc.poll();
}
BENCHMARK(BM_MetricSubmission);

/// A report from the real collectors' table to its JSON body; items are metrics.
void BM_JSONMarshaling(benchmark::State& state)
{
    agent::MetricTable table;
    agent::ProcessCollector process;
    agent::SystemCollector system;
    bench::require(process.collect(table) && system.collect(table), "BM_JSONMarshaling", "the collectors read /proc");
    table.add_counter("PollCount", 1);
    const auto first = table.take_batch();
    const auto metrics = std::count(first.body.begin(), first.body.end(), '{');
    bench::require(metrics > 30, "BM_JSONMarshaling", "a report carries the agent's metrics");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto batch = table.take_batch();
        benchmark::DoNotOptimize(batch);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations() * metrics);
}
BENCHMARK(BM_JSONMarshaling);

/// A sender's gzip of a real report body (the level senders use); bytes are the JSON.
void BM_GzipCompression(benchmark::State& state)
{
    const auto body = collected_batch().body;
    codec::Gzip gzip;
    std::string out;
    std::string back;
    gzip.compress(body, out);
    bench::require(gzip.decompress(out, back, 1 << 20) && back == body, "BM_GzipCompression", "the gzip round-trips");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        gzip.compress(body, out);
        benchmark::DoNotOptimize(out.data());
    }
    bench::report_thread_allocations(state, before);
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_GzipCompression);

/// N sender coroutines on the agent's one thread draining the queue, each doing a sender's CPU
/// work per batch (gzip, HMAC); 8 reports per iteration, items are batches.
void BM_ConcurrentWorkers(benchmark::State& state)
{
    constexpr std::size_t per_iteration = 8;
    const auto n = static_cast<std::size_t>(state.range(0));
    asio::io_context ioc;
    auto work = asio::make_work_guard(ioc);
    agent::BatchQueue queue{ioc.get_executor(), 2 * per_iteration, n};
    std::size_t delivered = 0;
    for (std::size_t i = 0; i < n; ++i) {
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                codec::Gzip gzip;
                std::string gzipped;
                while (auto batch = co_await queue.pop()) {
                    gzip.compress(batch->body, gzipped);
                    auto hash = codec::hmac_sha256_hex("benchmark-secret-key", gzipped);
                    benchmark::DoNotOptimize(hash);
                    ++delivered;
                }
            },
            rethrow);
    }
    const agent::Batch report = collected_batch();
    std::size_t pushed = 0;
    const auto round = [&] {
        for (std::size_t i = 0; i < per_iteration; ++i)
            (void)queue.push(report);
        pushed += per_iteration;
        while (delivered < pushed)
            ioc.poll();
    };
    round();
    bench::require(delivered == per_iteration && queue.dropped() == 0, "BM_ConcurrentWorkers",
                   "every batch reaches a sender");
    const auto before = bench::thread_allocations();
    for (auto _ : state)
        round();
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(per_iteration));
    queue.close();
    ioc.poll();
}
BENCHMARK(BM_ConcurrentWorkers)->Arg(1)->Arg(2)->Arg(4)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
