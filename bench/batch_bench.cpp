// Agent batch: the seed's internal/batch benchmarks, on the agent's MetricTable (latest values,
// one JSON array per report) and the codec the senders use.
#include "codec/gzip.hpp"
#include "core/json.hpp"
#include "support/agent.hpp"
#include "support/allocations.hpp"
#include "support/check.hpp"

#include <benchmark/benchmark.h>

namespace {

/// A poll overwriting the gauges of the report, one per iteration.
void BM_BatchAddGauge(benchmark::State& state)
{
    auto table = bench::agent_table();
    const auto& names = bench::agent_gauge_names();
    table.set_gauge(names[0], 42.5);
    bench::require(table.gauge(names[0]) && *table.gauge(names[0]) == 42.5, "BM_BatchAddGauge", "the gauge is set");
    std::size_t i = 0;
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        table.set_gauge(names[i % names.size()], static_cast<double>(i));
        ++i;
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BatchAddGauge);

void BM_BatchAddCounter(benchmark::State& state)
{
    auto table = bench::agent_table();
    const auto start = table.counter("PollCount");
    table.add_counter("PollCount", 1);
    bench::require(table.counter("PollCount") == start + 1, "BM_BatchAddCounter", "the delta accumulates");
    const auto before = bench::thread_allocations();
    for (auto _ : state)
        table.add_counter("PollCount", 1);
    bench::report_thread_allocations(state, before);
    benchmark::DoNotOptimize(table.counter("PollCount"));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BatchAddCounter);

/// A report: the JSON array of every metric, counters taken (reset to 0).
void BM_BatchGetAndClear(benchmark::State& state)
{
    auto table = bench::agent_table();
    const auto metrics = static_cast<std::int64_t>(bench::agent_gauge_names().size() + 1);
    auto first = table.take_batch();
    bench::require(first.body.starts_with("[{") && first.counters.size() == 1 && table.counter("PollCount") == 0,
                   "BM_BatchGetAndClear", "a batch carries the metrics and takes the counter");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto batch = table.take_batch();
        benchmark::DoNotOptimize(batch);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations() * metrics);
}
BENCHMARK(BM_BatchGetAndClear);

/// The JSON writer alone on a report's metrics, into a reused buffer.
void BM_JSONMarshal(benchmark::State& state)
{
    std::vector<core::Metric> metrics;
    double v = 1234567.891;
    for (const auto& name : bench::agent_gauge_names()) {
        metrics.push_back(core::Metric::gauge(name, v));
        v = v * 1.37 + 0.5;
    }
    metrics.push_back(core::Metric::counter("PollCount", 5));
    fmt::memory_buffer out;
    core::write_json(out, std::span<const core::Metric>{metrics});
    core::JsonCodec codec;
    std::vector<core::Metric> parsed;
    bench::require(bool(codec.parse_batch({out.data(), out.size()}, parsed, 1000)) && parsed == metrics,
                   "BM_JSONMarshal", "the JSON parses back to the same metrics");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        out.clear();
        core::write_json(out, std::span<const core::Metric>{metrics});
        benchmark::DoNotOptimize(out.data());
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(metrics.size()));
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_JSONMarshal);

/// gzip of a report body, as a sender does once per batch; bytes are the JSON.
void BM_GzipCompress(benchmark::State& state)
{
    auto table = bench::agent_table();
    const auto body = table.take_batch().body;
    codec::Gzip gzip;
    std::string out;
    std::string back;
    gzip.compress(body, out);
    bench::require(gzip.decompress(out, back, 1 << 20) && back == body, "BM_GzipCompress", "the gzip round-trips");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        gzip.compress(body, out);
        benchmark::DoNotOptimize(out.data());
    }
    bench::report_thread_allocations(state, before);
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
    state.counters["ratio"] = static_cast<double>(body.size()) / static_cast<double>(out.size());
}
BENCHMARK(BM_GzipCompress);

/// The agent's rhythm: a poll writes every gauge and PollCount; every fifth poll is also a
/// report (poll 2 s, report 10 s). Items are polls.
void BM_BatchMixedOperations(benchmark::State& state)
{
    auto table = bench::agent_table();
    const auto& names = bench::agent_gauge_names();
    bench::require(!table.take_batch().body.empty(), "BM_BatchMixedOperations", "a report has a body");
    std::size_t polls = 0;
    double v = 1.5;
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        for (const auto& name : names)
            table.set_gauge(name, v += 1.0);
        table.add_counter("PollCount", 1);
        if (++polls % 5 == 0) {
            auto batch = table.take_batch();
            benchmark::DoNotOptimize(batch);
        }
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BatchMixedOperations);

}  // namespace

BENCHMARK_MAIN();
