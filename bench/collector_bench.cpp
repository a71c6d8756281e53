// Agent collectors: the seed's internal/collector benchmarks, reading the real /proc of this
// machine (the Go agent read runtime.MemStats and gopsutil).
#include "agent/collectors.hpp"
#include "support/allocations.hpp"
#include "support/check.hpp"

#include <benchmark/benchmark.h>

namespace {

/// The process gauges (Go's runtime metrics): /proc/self/status, stat, fd, mallinfo2.
void BM_RuntimeMetricCollection(benchmark::State& state)
{
    agent::ProcessCollector collector;
    agent::MetricTable table;
    bench::require(bool(collector.collect(table)) && table.gauge("HeapAlloc") != nullptr,
                   "BM_RuntimeMetricCollection", "a collection writes HeapAlloc");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto ok = collector.collect(table);
        benchmark::DoNotOptimize(ok);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RuntimeMetricCollection);

/// TotalMemory, FreeMemory, CPUutilization1..N: /proc/meminfo and /proc/stat.
void BM_SystemMetricCollection(benchmark::State& state)
{
    agent::SystemCollector collector;
    agent::MetricTable table;
    bench::require(bool(collector.collect(table)) && table.gauge("TotalMemory") != nullptr &&
                       table.gauge("CPUutilization1") != nullptr,
                   "BM_SystemMetricCollection", "a collection writes memory and CPU gauges");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto ok = collector.collect(table);
        benchmark::DoNotOptimize(ok);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SystemMetricCollection);

/// What the agent builds at start: the three collectors.
void BM_CollectorCreation(benchmark::State& state)
{
    {
        agent::ProcessCollector process;
        agent::SystemCollector system;
        agent::RandomCollector random;
        agent::MetricTable table;
        random.collect(table);
        bench::require(table.gauge("RandomValue") != nullptr, "BM_CollectorCreation", "the collectors work");
    }
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        agent::ProcessCollector process;
        agent::SystemCollector system;
        agent::RandomCollector random;
        benchmark::DoNotOptimize(&process);
        benchmark::DoNotOptimize(&system);
        benchmark::DoNotOptimize(&random);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CollectorCreation);

}  // namespace

BENCHMARK_MAIN();
