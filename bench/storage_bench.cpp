// Storage: the seed's internal/storage benchmarks, for the sharded MemoryMap and a
// single-mutex std::unordered_map baseline in the same binary, from 1 to 4 threads sharing one
// store. Per-thread time per operation = threads / items_per_second.
#include "core/clock.hpp"
#include "storage/memory_map.hpp"
#include "support/allocations.hpp"
#include "support/check.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
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
/// same contract as MemoryMap (counter overflow rejected, listing sorted).
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

    Result<Metric> remove(Kind kind, std::string_view id)
    {
        std::lock_guard lock{mutex_};
        const auto take = [&](auto& map) -> Result<Metric> {
            auto it = map.find(id);
            if (it == map.end())
                return core::Errc::not_found;
            const Metric last{id, kind, static_cast<double>(it->second), static_cast<std::int64_t>(it->second)};
            map.erase(it);
            return last;
        };
        return kind == Kind::gauge ? take(gauges_) : take(counters_);
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

/// The candidate under the same interface: MemoryMap stamped as the memory-only daemon stamps it
/// (the clock's time, no log sequence number).
class Memory {
public:
    Result<Metric> apply(const Metric& m) { return map_.update(m, {0, core::unix_millis()}); }
    Result<Metric> get(Kind kind, std::string_view id) const { return map_.get(kind, id); }
    Result<Metric> remove(Kind kind, std::string_view id) { return map_.remove(kind, id, {0, core::unix_millis()}); }
    std::vector<OwnedMetric> list() const { return map_.list(); }

private:
    storage::MemoryMap map_;
};

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

template <class Storage>
constexpr std::string_view storage_name = "MemoryMap";
template <>
constexpr std::string_view storage_name<SingleLockStorage> = "SingleLockStorage";

/// What one benchmark's store holds: `names` names (that many per thread when `per_thread`),
/// each with a gauge and a counter. `benchmark` names it in failed preconditions.
struct StoreSpec {
    std::string_view benchmark;
    std::size_t names;
    bool per_thread = false;
};

constexpr StoreSpec update_gauge{"BM_UpdateGauge", name_count};
constexpr StoreSpec update_gauge_own{"BM_UpdateGaugeOwnNames", name_count, true};
constexpr StoreSpec update_counter{"BM_UpdateCounter", name_count};
constexpr StoreSpec update_counter_own{"BM_UpdateCounterOwnNames", name_count, true};
constexpr StoreSpec get_gauge{"BM_GetGauge", name_count};
constexpr StoreSpec get_counter{"BM_GetCounter", name_count};
constexpr StoreSpec get_all{"BM_GetAll", 100};
constexpr StoreSpec mixed{"BM_MixedOperations", name_count};
constexpr StoreSpec delete_metric{"BM_DeleteMetric", name_count, true};

/// The store of the benchmark run in progress. Its Setup makes and fills it before the run's
/// threads start, and its Teardown drops it, so a run depends on no other benchmark, on no order
/// of repetitions (random interleaving) and on no thread count. Google Benchmark runs one
/// benchmark at a time, so one slot per storage type is enough.
template <class Storage>
struct Current {
    static inline std::unique_ptr<Storage> store;
    static inline std::vector<std::string> names;
    static inline std::string benchmark;  // "BM_UpdateGauge<MemoryMap>/threads:2"
};

template <class Storage, const StoreSpec& spec>
void make_store(const benchmark::State& state)
{
    using C = Current<Storage>;
    const auto threads = static_cast<std::size_t>(state.threads());
    C::benchmark = std::string{spec.benchmark} + "<" + std::string{storage_name<Storage>} +
                   ">/threads:" + std::to_string(threads);
    C::names = make_names(spec.per_thread ? spec.names * threads : spec.names);
    C::store = std::make_unique<Storage>();
    for (const auto& name : C::names) {
        bench::require(bool(C::store->apply(Metric::gauge(name, 1.5))), C::benchmark, "seed a gauge");
        bench::require(bool(C::store->apply(Metric::counter(name, 1))), C::benchmark, "seed a counter");
    }
}

template <class Storage>
void drop_store(const benchmark::State&)
{
    Current<Storage>::store.reset();
    Current<Storage>::names.clear();
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

/// Checks that an update of `kind` returns what it stored, in a form that holds whatever the
/// benchmark's other threads do: a gauge update returns its value (this thread alone writes
/// `name` before the timed loop's opening barrier) and a counter's total only grows (every
/// update adds 1).
template <Kind kind, class Storage>
void require_update_stores(Storage& store, std::string_view name)
{
    const auto before = store.get(Kind::counter, name);
    const auto first = store.apply(nth_update<kind>(name, 2));
    const bool stored = kind == Kind::gauge ? first && first->value == 2
                                            : first && before && first->delta > before->delta;
    bench::require(stored, Current<Storage>::benchmark, "an update returns what it stored");
}

/// Times updates of `kind` walking `names` from `start`.
template <Kind kind, class Storage>
void time_updates(benchmark::State& state, std::span<const std::string> names, std::size_t start)
{
    Storage& store = *Current<Storage>::store;
    require_update_stores<kind>(store, names[start % names.size()]);
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

/// Updates of `kind` on names that all threads share, each thread from its own offset.
template <Kind kind, class Storage>
void update_shared_names(benchmark::State& state)
{
    time_updates<kind, Storage>(state, Current<Storage>::names, start_offset(state));
}

/// Updates of `kind` on names of the thread's own (agents on different hosts with host-prefixed
/// names): no value is shared between threads (for the single-mutex baseline, its lock still is).
template <Kind kind, class Storage>
void update_own_names(benchmark::State& state)
{
    const std::span<const std::string> all{Current<Storage>::names};
    const auto own = static_cast<std::size_t>(state.thread_index()) * name_count;
    time_updates<kind, Storage>(state, all.subspan(own, name_count), 0);
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

/// Reads of `kind`, each thread from its own offset; nothing writes during the run.
template <Kind kind, class Storage>
void time_gets(benchmark::State& state)
{
    Storage& store = *Current<Storage>::store;
    const auto& names = Current<Storage>::names;
    bench::require(bool(store.get(kind, names.back())), Current<Storage>::benchmark, "the metric exists");
    std::size_t i = start_offset(state);
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto r = store.get(kind, names[i++ % names.size()]);
        benchmark::DoNotOptimize(r);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}

template <class Storage>
void BM_GetGauge(benchmark::State& state)
{
    time_gets<Kind::gauge, Storage>(state);
}

template <class Storage>
void BM_GetCounter(benchmark::State& state)
{
    time_gets<Kind::counter, Storage>(state);
}

/// A listing of 100 metrics of each kind (an agent's worth and more): the `/` page and snapshots.
template <class Storage>
void BM_GetAll(benchmark::State& state)
{
    Storage& store = *Current<Storage>::store;
    const auto& names = Current<Storage>::names;
    bench::require(store.list().size() == 2 * names.size(), Current<Storage>::benchmark,
                   "the listing has every metric");
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
    Storage& store = *Current<Storage>::store;
    const auto& names = Current<Storage>::names;
    std::size_t i = start_offset(state);
    // This thread alone writes its first name before the timed loop's opening barrier.
    const auto& own = names[(i / 4) % names.size()];
    bench::require(store.apply(Metric::gauge(own, 3.5)) && store.get(Kind::gauge, own)->value == 3.5,
                   Current<Storage>::benchmark, "an update is visible to a get");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        const auto& name = names[(i / 4) % names.size()];
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

/// DELETE of a counter, then the update that brings it back (so that every iteration deletes a
/// metric that exists), on names of the thread's own. Items: deletions. The removed entry is
/// freed after a grace period, and the insert copies the name: one allocation per iteration.
template <class Storage>
void BM_DeleteMetric(benchmark::State& state)
{
    Storage& store = *Current<Storage>::store;
    const std::span<const std::string> all{Current<Storage>::names};
    const auto names = all.subspan(static_cast<std::size_t>(state.thread_index()) * name_count, name_count);
    const auto removed = store.remove(Kind::counter, names.front());
    bench::require(removed && removed->delta == 1 && !store.get(Kind::counter, names.front()) &&
                       store.apply(Metric::counter(names.front(), 1)),
                   Current<Storage>::benchmark, "a removal answers the last value and the metric is gone");
    std::size_t i = 0;
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        const auto& name = names[i++ % names.size()];
        benchmark::DoNotOptimize(store.remove(Kind::counter, name));
        benchmark::DoNotOptimize(store.apply(Metric::counter(name, 1)));
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
// Each run gets a fresh store from its Setup (see Current).
#define METRICS_STORAGE_BENCH_ONE(fn, Storage, spec)                                                  \
    BENCHMARK_TEMPLATE(fn, Storage)                                                                   \
        ->Setup(make_store<Storage, spec>)                                                            \
        ->Teardown(drop_store<Storage>)                                                               \
        ->ThreadRange(1, 4)                                                                           \
        ->UseRealTime()
#define METRICS_STORAGE_BENCH(fn, spec)                                                               \
    METRICS_STORAGE_BENCH_ONE(fn, SingleLockStorage, spec);                                           \
    METRICS_STORAGE_BENCH_ONE(fn, Memory, spec)

METRICS_STORAGE_BENCH(BM_UpdateGauge, update_gauge);
METRICS_STORAGE_BENCH(BM_UpdateGaugeOwnNames, update_gauge_own);
METRICS_STORAGE_BENCH(BM_UpdateCounter, update_counter);
METRICS_STORAGE_BENCH(BM_UpdateCounterOwnNames, update_counter_own);
METRICS_STORAGE_BENCH(BM_GetGauge, get_gauge);
METRICS_STORAGE_BENCH(BM_GetCounter, get_counter);
METRICS_STORAGE_BENCH(BM_GetAll, get_all);
METRICS_STORAGE_BENCH(BM_MixedOperations, mixed);
METRICS_STORAGE_BENCH(BM_DeleteMetric, delete_metric);

}  // namespace

BENCHMARK_MAIN();
