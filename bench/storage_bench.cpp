// Storage: the seed's internal/storage benchmarks, for the sharded MemoryStorage and a
// single-mutex std::unordered_map baseline in the same binary, from 1 to 4 threads sharing one
// store. Per-thread time per operation = threads / items_per_second.
#include "storage/memory.hpp"
#include "support/allocations.hpp"
#include "support/check.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using core::Kind;
using core::Metric;
using core::OwnedMetric;
using core::Result;

/// The obvious implementation: one mutex over two hash maps (what the Go server did), with the
/// same contract as MemoryStorage (counter overflow rejected, listing sorted).
class SingleLockStorage {
public:
    Result<Metric> apply(Metric m)
    {
        std::lock_guard lock{mutex_};
        if (m.kind == Kind::gauge) {
            auto it = gauges_.find(m.id);
            if (it == gauges_.end())
                it = gauges_.emplace(std::string{m.id}, m.value).first;
            else
                it->second = m.value;
            return Metric::gauge(m.id, it->second);
        }
        auto it = counters_.find(m.id);
        if (it == counters_.end())
            it = counters_.emplace(std::string{m.id}, 0).first;
        std::int64_t sum = 0;
        if (__builtin_add_overflow(it->second, m.delta, &sum))
            return core::Errc::counter_overflow;
        it->second = sum;
        return Metric::counter(m.id, sum);
    }

    Result<Metric> get(Kind kind, std::string_view id)
    {
        std::lock_guard lock{mutex_};
        if (kind == Kind::gauge) {
            auto it = gauges_.find(id);
            if (it == gauges_.end())
                return core::Errc::not_found;
            return Metric::gauge(id, it->second);
        }
        auto it = counters_.find(id);
        if (it == counters_.end())
            return core::Errc::not_found;
        return Metric::counter(id, it->second);
    }

    std::vector<OwnedMetric> list()
    {
        std::vector<OwnedMetric> out;
        {
            std::lock_guard lock{mutex_};
            out.reserve(gauges_.size() + counters_.size());
            for (const auto& [id, v] : gauges_)
                out.push_back({id, Kind::gauge, v, 0});
            for (const auto& [id, d] : counters_)
                out.push_back({id, Kind::counter, 0, d});
        }
        std::sort(out.begin(), out.end(), [](const OwnedMetric& a, const OwnedMetric& b) {
            return a.id != b.id ? a.id < b.id : a.kind < b.kind;
        });
        return out;
    }

private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    template <class V>
    using Map = std::unordered_map<std::string, V, Hash, std::equal_to<>>;

    std::mutex mutex_;
    Map<double> gauges_;
    Map<std::int64_t> counters_;
};

/// The candidate under the same interface (the synchronous core of the async Storage).
using Memory = storage::MemoryStorage;

/// Names as agents send them; several per shard so that threads spread over the shards.
std::vector<std::string> make_names(std::size_t n)
{
    std::vector<std::string> names;
    names.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        names.push_back("metric_" + std::to_string(i));
    return names;
}

constexpr std::size_t name_count = 1024;

/// Fills `store` with a gauge and a counter per name; thread 0 does it before the timed loop,
/// whose start is a barrier for all threads. Idempotent: repetitions reuse the store.
template <class Storage>
void seed(benchmark::State& state, Storage& store, const std::vector<std::string>& names)
{
    if (state.thread_index() != 0)
        return;
    for (const auto& name : names) {
        bench::require(bool(store.apply(Metric::gauge(name, 1.5))), "storage", "seed a gauge");
        if (!store.get(Kind::counter, name))
            bench::require(bool(store.apply(Metric::counter(name, 1))), "storage", "seed a counter");
    }
}

/// Each thread walks the names from its own offset, so threads touch different keys.
std::size_t start_offset(const benchmark::State& state)
{
    return static_cast<std::size_t>(state.thread_index()) * 97;
}

/// The i-th update of a timed loop: gauges take a new value each time, counters add 1.
template <Kind kind>
Metric nth_update(std::string_view name, std::size_t i)
{
    return kind == Kind::gauge ? Metric::gauge(name, static_cast<double>(i)) : Metric::counter(name, 1);
}

/// Times updates of `kind` walking `names` from `start`, after checking that one succeeds and
/// returns what it stored (a gauge its value, a counter its total, one more than before).
template <Kind kind, class Storage>
void time_updates(benchmark::State& state, Storage& store, std::span<const std::string> names, std::size_t start)
{
    const std::string& name = names[start % names.size()];
    const auto before_total = store.get(Kind::counter, name);
    const auto first = store.apply(nth_update<kind>(name, 2));
    const bool stored = kind == Kind::gauge ? first && first->value == 2
                                            : first && before_total && first->delta == before_total->delta + 1;
    bench::require(stored, "time_updates", "an update returns what it stored");
    std::size_t i = start;
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto r = store.apply(nth_update<kind>(names[i % names.size()], i));
        benchmark::DoNotOptimize(r);
        ++i;
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}

/// Updates of `kind` on names that all threads share, each thread from its own offset. Each
/// instantiation has its own store, shared by the benchmark's threads.
template <Kind kind, class Storage>
void update_shared_names(benchmark::State& state)
{
    static const auto names = make_names(name_count);
    static Storage store;
    seed(state, store, names);
    time_updates<kind>(state, store, names, start_offset(state));
}

/// Updates of `kind` on names of the thread's own (agents on different hosts with host-prefixed
/// names): no value is shared between threads (for the single-mutex baseline, its lock still is).
template <Kind kind, class Storage>
void update_own_names(benchmark::State& state)
{
    static const auto all = make_names(name_count * 4);  // room for 4 threads
    static Storage store;
    seed(state, store, all);
    const auto own = static_cast<std::size_t>(state.thread_index()) * name_count;
    time_updates<kind>(state, store, std::span<const std::string>{all}.subspan(own, name_count), 0);
}

template <class Storage>
void BM_UpdateGauge(benchmark::State& state)
{
    update_shared_names<Kind::gauge, Storage>(state);
}

template <class Storage>
void BM_UpdateGaugeOwnNames(benchmark::State& state)
{
    update_own_names<Kind::gauge, Storage>(state);
}

template <class Storage>
void BM_UpdateCounter(benchmark::State& state)
{
    update_shared_names<Kind::counter, Storage>(state);
}

template <class Storage>
void BM_UpdateCounterOwnNames(benchmark::State& state)
{
    update_own_names<Kind::counter, Storage>(state);
}

template <class Storage>
void BM_GetGauge(benchmark::State& state)
{
    static const auto names = make_names(name_count);
    static Storage store;  // shared by the benchmark's threads
    seed(state, store, names);
    bench::require(bool(store.get(Kind::gauge, names[name_count - 1])), "BM_GetGauge", "the gauge exists");
    std::size_t i = start_offset(state);
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto r = store.get(Kind::gauge, names[i++ % name_count]);
        benchmark::DoNotOptimize(r);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}

template <class Storage>
void BM_GetCounter(benchmark::State& state)
{
    static const auto names = make_names(name_count);
    static Storage store;  // shared by the benchmark's threads
    seed(state, store, names);
    bench::require(bool(store.get(Kind::counter, names[name_count - 1])), "BM_GetCounter", "the counter exists");
    std::size_t i = start_offset(state);
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto r = store.get(Kind::counter, names[i++ % name_count]);
        benchmark::DoNotOptimize(r);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}

/// A listing of 100 metrics of each kind (an agent's worth and more): the `/` page and snapshots.
template <class Storage>
void BM_GetAll(benchmark::State& state)
{
    static const auto names = make_names(100);
    static Storage store;
    seed(state, store, names);
    bench::require(store.list().size() == 2 * names.size(), "BM_GetAll", "the listing has every metric");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto all = store.list();
        benchmark::DoNotOptimize(all);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(2 * names.size()));
}

/// What a server sees: gauge and counter updates and reads in equal parts.
template <class Storage>
void BM_MixedOperations(benchmark::State& state)
{
    static const auto names = make_names(name_count);
    static Storage store;  // shared by the benchmark's threads
    seed(state, store, names);
    bench::require(store.apply(Metric::gauge(names[1], 3.5)) && store.get(Kind::gauge, names[1])->value == 3.5,
                   "BM_MixedOperations", "an update is visible to a get");
    std::size_t i = start_offset(state);
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        const auto& name = names[(i / 4) % name_count];
        switch (i++ % 4) {
        case 0: benchmark::DoNotOptimize(store.apply(Metric::gauge(name, 1.25))); break;
        case 1: benchmark::DoNotOptimize(store.apply(Metric::counter(name, 1))); break;
        case 2: benchmark::DoNotOptimize(store.get(Kind::gauge, name)); break;
        default: benchmark::DoNotOptimize(store.get(Kind::counter, name)); break;
        }
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}

/// The floor for threads that write the same data: one atomic add on a shared cache line per
/// iteration. With 2 threads each add moves the line between cores; no store that updates the
/// same metric from two cores can cost less per operation.
void BM_SharedLineAdd(benchmark::State& state)
{
    alignas(64) static std::atomic<std::uint64_t> shared{0};
    for (auto _ : state)
        benchmark::DoNotOptimize(shared.fetch_add(1, std::memory_order_relaxed));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SharedLineAdd)->ThreadRange(1, 2)->UseRealTime();

// Real time: with threads, CPU time of the main thread alone says nothing.
#define METRICS_STORAGE_BENCH(fn)                                                         \
    BENCHMARK_TEMPLATE(fn, SingleLockStorage)->ThreadRange(1, 4)->UseRealTime();          \
    BENCHMARK_TEMPLATE(fn, Memory)->ThreadRange(1, 4)->UseRealTime()

METRICS_STORAGE_BENCH(BM_UpdateGauge);
METRICS_STORAGE_BENCH(BM_UpdateGaugeOwnNames);
METRICS_STORAGE_BENCH(BM_UpdateCounter);
METRICS_STORAGE_BENCH(BM_UpdateCounterOwnNames);
METRICS_STORAGE_BENCH(BM_GetGauge);
METRICS_STORAGE_BENCH(BM_GetCounter);
METRICS_STORAGE_BENCH(BM_GetAll);
METRICS_STORAGE_BENCH(BM_MixedOperations);

}  // namespace

BENCHMARK_MAIN();
