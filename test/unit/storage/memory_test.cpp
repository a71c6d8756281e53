#include "storage/memory.hpp"

#include "counting_new.hpp"
#include "support/run.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace {

using core::Errc;
using core::Kind;
using core::Metric;
using core::OwnedMetric;
using storage::MemoryStorage;
using storage::Shards;

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

Metric delta(std::string_view id, std::int64_t d) { return Metric::counter(id, d); }
Metric value(std::string_view id, double v) { return Metric::gauge(id, v); }

}  // namespace

TEST_CASE("a counter update adds its delta")
{
    MemoryStorage store{Shards{4}};
    REQUIRE(store.apply(delta("hits", 5)));
    CHECK(store.counter("hits") == 5);

    SUBCASE("the result is the new total") {
        auto r = store.apply(delta("hits", -7));
        REQUIRE(r);
        CHECK(*r == delta("hits", -2));
    }
    SUBCASE("overflow is rejected and changes nothing") {
        CHECK(store.apply(delta("hits", int64_max)).error() == Errc::counter_overflow);
        CHECK(store.counter("hits") == 5);
    }
}

TEST_CASE("a gauge update replaces its value")
{
    MemoryStorage store;
    REQUIRE(store.apply(value("load", 1.5)));
    auto r = store.apply(value("load", -0.25));
    REQUIRE(r);
    CHECK(*r == value("load", -0.25));
    CHECK(store.gauge("load") == -0.25);
}

TEST_CASE("a gauge and a counter of the same name are separate metrics")
{
    MemoryStorage store;
    REQUIRE(store.apply(value("x", 2.5)));
    REQUIRE(store.apply(delta("x", 3)));
    CHECK(store.get(Kind::gauge, "x")->value == 2.5);
    CHECK(store.get(Kind::counter, "x")->delta == 3);
    CHECK(store.size() == 2);
}

TEST_CASE("an unknown metric is not found, in either namespace")
{
    MemoryStorage store;
    REQUIRE(store.apply(value("g", 1)));
    CHECK(store.get(Kind::counter, "g").error() == Errc::not_found);
    CHECK(store.get(Kind::gauge, "nope").error() == Errc::not_found);
}

TEST_CASE("any shard count works: it is rounded up to a power of two")
{
    for (std::size_t n : std::initializer_list<std::size_t>{0, 1, 3, 64, 100}) {
        MemoryStorage store{Shards{n}};
        for (int i = 0; i < 50; ++i)
            REQUIRE(store.apply(delta("c" + std::to_string(i), i)));
        CHECK(store.size() == 50);
        CHECK(store.counter("c49") == 49);
    }
}

TEST_CASE("a batch is applied in order and reports each element's state right after it")
{
    MemoryStorage store;
    REQUIRE(store.apply(delta("c", 10)));
    const std::vector<Metric> batch{delta("c", 1), value("g", 1), delta("c", 2), value("g", 2), delta("n", 4)};
    std::vector<Metric> stored;
    REQUIRE(store.apply_batch(batch, &stored));
    CHECK(stored == std::vector<Metric>{delta("c", 11), value("g", 1), delta("c", 13), value("g", 2), delta("n", 4)});
    CHECK(store.counter("c") == 13);
    CHECK(store.gauge("g") == 2);
    CHECK(store.counter("n") == 4);

    SUBCASE("without a result vector") {
        REQUIRE(store.apply_batch(batch, nullptr));
        CHECK(store.counter("c") == 16);
    }
    SUBCASE("new names that repeat get one metric each, per kind") {
        const std::vector<Metric> fresh{delta("x", 1), value("y", 1.5), delta("x", 2), value("y", 2.5), value("x", 9)};
        REQUIRE(store.apply_batch(fresh, &stored));
        CHECK(stored == std::vector<Metric>{delta("x", 1), value("y", 1.5), delta("x", 3), value("y", 2.5), value("x", 9)});
        CHECK(store.counter("x") == 3);
        CHECK(store.gauge("x") == 9);
        CHECK(store.gauge("y") == 2.5);
        CHECK(store.size() == 6);  // c, g, n, and x twice, y
    }
}

TEST_CASE("a batch whose third element overflows changes nothing")
{
    MemoryStorage store{Shards{8}};
    REQUIRE(store.apply(delta("big", int64_max - 1)));
    REQUIRE(store.apply(value("g", 7)));
    REQUIRE(store.apply(delta("c", 1)));
    const auto before = store.list();

    SUBCASE("single elements") {
        const std::vector<Metric> batch{value("g", 8), delta("new", 1), delta("big", 2), delta("c", 1)};
        std::vector<Metric> stored{value("left", 1)};
        CHECK(store.apply_batch(batch, &stored).error() == Errc::counter_overflow);
    }
    SUBCASE("repeated ids and new names before the overflow") {
        const std::vector<Metric> batch{delta("c", 5),   value("g", 9),  value("fresh", 1), delta("c", 5),
                                        delta("big", 1), delta("new", 3), delta("new", 3),  delta("big", 1)};
        CHECK(store.apply_batch(batch, nullptr).error() == Errc::counter_overflow);
    }
    CHECK(store.list() == before);
    CHECK(store.get(Kind::counter, "new").error() == Errc::not_found);
    CHECK(store.get(Kind::gauge, "fresh").error() == Errc::not_found);
}

TEST_CASE("a negative delta that would leave int64 is rejected too")
{
    MemoryStorage store;
    REQUIRE(store.apply(delta("low", std::numeric_limits<std::int64_t>::min())));
    CHECK(store.apply(delta("low", -1)).error() == Errc::counter_overflow);
    CHECK(store.counter("low") == std::numeric_limits<std::int64_t>::min());
}

TEST_CASE("updating or reading an existing metric does not allocate")
{
    MemoryStorage store;
    const std::string long_name(200, 'n');  // not in the small-string buffer
    REQUIRE(store.apply(value(long_name, 1)));
    REQUIRE(store.apply(delta(long_name, 1)));
    const std::vector<Metric> batch{value(long_name, 2), delta(long_name, 2), delta(long_name, 3)};
    std::vector<Metric> stored;
    REQUIRE(store.apply_batch(batch, &stored));  // warms the per-thread scratch and `stored`

    const std::size_t before = test::thread_allocations();
    CHECK(store.apply(value(long_name, 3)));
    CHECK(store.apply(delta(long_name, 1)));
    CHECK(store.get(Kind::gauge, long_name));
    CHECK(store.get(Kind::counter, long_name));
    CHECK(store.get(Kind::counter, "absent").error() == Errc::not_found);
    CHECK(store.apply_batch(batch, &stored));
    CHECK(test::thread_allocations() == before);
}

TEST_CASE("list is sorted by name, a gauge before a counter of the same name")
{
    MemoryStorage store{Shards{2}};
    REQUIRE(store.apply(delta("b", 1)));
    REQUIRE(store.apply(value("b", 2)));
    REQUIRE(store.apply(value("a", 3)));
    REQUIRE(store.apply(delta("ab", 4)));
    REQUIRE(store.apply(value("B", 5)));
    CHECK(store.list() == std::vector<OwnedMetric>{{"B", Kind::gauge, 5, 0},
                                                   {"a", Kind::gauge, 3, 0},
                                                   {"ab", Kind::counter, 0, 4},
                                                   {"b", Kind::gauge, 2, 0},
                                                   {"b", Kind::counter, 0, 1}});
}

TEST_CASE("restore replaces the content with a snapshot")
{
    MemoryStorage store;
    REQUIRE(store.apply(value("old", 1)));
    const std::vector<OwnedMetric> snapshot{{"c", Kind::counter, 0, 41},
                                            {"g", Kind::gauge, 0.5, 0},
                                            {"c", Kind::counter, 0, 42}};
    store.restore(snapshot);
    CHECK(store.list() == std::vector<OwnedMetric>{{"c", Kind::counter, 0, 42}, {"g", Kind::gauge, 0.5, 0}});

    SUBCASE("clear empties it") {
        store.clear();
        CHECK(store.size() == 0);
        CHECK(store.list().empty());
    }
}

TEST_CASE("concurrent counter increments on shared names are exact")
{
    MemoryStorage store{Shards{4}};
    const std::vector<std::string> names{"a", "b", "c", "d", "e", "f", "g", "h"};
    constexpr int threads = 4;
    constexpr int increments = 10000;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (int i = 0; i < increments; ++i)
                if (!store.apply(delta(names[static_cast<std::size_t>(i + t) % names.size()], 1)))
                    std::abort();
        });
    for (auto& th : pool)
        th.join();
    for (const auto& name : names)
        CHECK(store.counter(name) == threads * increments / static_cast<std::int64_t>(names.size()));
}

TEST_CASE("concurrent batches over overlapping names in different orders neither deadlock nor lose updates")
{
    MemoryStorage store{Shards{8}};
    std::vector<std::string> names;
    for (int i = 0; i < 16; ++i)
        names.push_back("m" + std::to_string(i));
    constexpr int threads = 4;
    constexpr int batches = 2000;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            std::vector<Metric> batch;
            for (const auto& n : names)
                batch.push_back(delta(n, 1));
            std::rotate(batch.begin(), batch.begin() + 3 * t, batch.end());
            if (t % 2 == 1)
                std::reverse(batch.begin(), batch.end());
            std::vector<Metric> stored;
            for (int i = 0; i < batches; ++i) {
                if (!store.apply_batch(batch, &stored))
                    std::abort();
                if (i % 100 == 0 && store.list().size() != names.size())  // listing meanwhile
                    std::abort();
            }
        });
    for (auto& th : pool)
        th.join();
    for (const auto& n : names)
        CHECK(store.counter(n) == threads * batches);
}

TEST_CASE("a reader never sees part of a batch, nor any of a batch that failed")
{
    // Batches add 1 to "a", then to 100 other counters, then to "b": a reader that reads "a" and
    // then "b" must never find b behind a (half a batch). Failing batches set "g" and a new name
    // and add to "a" before their overflowing counter: none of it may ever be seen. Gets read
    // without a lock, so this checks the shards' batch sequence numbers.
    MemoryStorage store{Shards{4}};
    REQUIRE(store.apply(delta("a", 0)));
    REQUIRE(store.apply(delta("b", 0)));
    REQUIRE(store.apply(value("g", 0.5)));
    REQUIRE(store.apply(delta("full", int64_max)));
    constexpr int batches = 5000;
    std::atomic<bool> done{false};
    std::thread writer{[&] {
        std::vector<Metric> good{delta("a", 1)};
        std::vector<std::string> fillers;
        for (int i = 0; i < 100; ++i)
            fillers.push_back("f" + std::to_string(i));
        for (const auto& f : fillers)
            good.push_back(delta(f, 1));
        good.push_back(delta("b", 1));
        const std::vector<Metric> bad{value("g", 1), value("ghost", 1), delta("a", 1), delta("full", 1)};
        for (int i = 0; i < batches; ++i)
            if (!store.apply_batch(good, nullptr) || store.apply_batch(bad, nullptr).error() != Errc::counter_overflow)
                std::abort();
        done.store(true);
    }};
    int behind = 0, dirty = 0, reads = 0;
    while (!done.load() || reads == 0) {
        const std::int64_t a = store.counter("a");
        const std::int64_t b = store.counter("b");
        behind += b < a ? 1 : 0;
        dirty += store.gauge("g") != 0.5 || store.get(Kind::gauge, "ghost") ? 1 : 0;
        ++reads;
    }
    writer.join();
    CHECK(behind == 0);
    CHECK(dirty == 0);
    CHECK(store.counter("a") == batches);
    CHECK(store.counter("b") == batches);
}

TEST_CASE("single updates and batches on the same counters and gauges, from several threads, add up exactly")
{
    // Half the batches fail (their last counter overflows) and are undone: a single update that
    // slipped in between a batch's read of a counter and its undo would be lost.
    MemoryStorage store{Shards{2}};
    const std::vector<std::string> names{"s0", "s1", "s2", "s3", "s4", "s5"};
    REQUIRE(store.apply(delta("full", int64_max)));
    constexpr int threads = 4;
    constexpr int rounds = 7200;  // a multiple of names.size()
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            std::vector<Metric> good;
            for (const auto& n : names)
                good.push_back(delta(n, 2));
            good.push_back(value("shared", t));
            std::vector<Metric> bad = good;
            bad.push_back(delta("full", 1));
            for (int i = 0; i < rounds; ++i) {
                const auto& name = names[static_cast<std::size_t>(i + t) % names.size()];
                const bool ok = t % 2 == 0 ? bool(store.apply(delta(name, 1))) && bool(store.apply(value("shared", t)))
                                           : bool(store.apply_batch(good, nullptr)) &&
                                                 store.apply_batch(bad, nullptr).error() == Errc::counter_overflow;
                if (!ok)
                    std::abort();
            }
        });
    for (auto& th : pool)
        th.join();
    // Threads 0 and 2 add 1 to one name per round; threads 1 and 3 add 2 to every name per round.
    for (const auto& n : names)
        CHECK(store.counter(n) == 2 * rounds / static_cast<std::int64_t>(names.size()) + 2 * 2 * rounds);
    CHECK(store.counter("full") == int64_max);
    const double last = store.gauge("shared");
    CHECK((last >= 0 && last < threads && last == static_cast<int>(last)));
}

TEST_CASE("through the async Storage interface the memory store behaves the same")
{
    MemoryStorage memory;
    storage::Storage& store = memory;
    test::run([](storage::Storage& s) -> asio::awaitable<void> {
        // Each co_await is its own statement: GCC 12 miscompiles one inside a condition.
        const auto applied = co_await s.apply(delta("c", 2));
        CHECK(*applied == delta("c", 2));
        std::vector<Metric> stored;
        const std::vector<Metric> batch{delta("c", 3), value("g", 1)};
        const auto batched = co_await s.apply_batch(batch, stored);
        CHECK(batched);
        CHECK(stored == std::vector<Metric>{delta("c", 5), value("g", 1)});
        const auto got = co_await s.get(Kind::counter, "c");
        CHECK(got->delta == 5);
        const auto all = co_await s.list();
        CHECK(all->size() == 2);
        const bool healthy = co_await s.ping();
        CHECK(healthy);
        co_await s.close();
    }(store));
}

TEST_CASE("the memory store answers apply_now and get_now at once, as apply and get")
{
    MemoryStorage store{Shards{4}};
    storage::Storage& any = store;
    auto r = any.apply_now(delta("hits", 5));
    REQUIRE(r);
    CHECK(**r == delta("hits", 5));
    CHECK(any.apply_now(delta("hits", int64_max))->error() == Errc::counter_overflow);
    CHECK(**any.get_now(Kind::counter, "hits") == delta("hits", 5));
    CHECK(any.get_now(Kind::gauge, "hits")->error() == Errc::not_found);
}
