#include "storage/memory_map.hpp"

#include "counting_new.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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
using storage::MapOptions;
using storage::MemoryMap;
using storage::Shards;
using storage::Stamp;
using namespace std::chrono_literals;

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

Metric delta(std::string_view id, std::int64_t d) { return Metric::counter(id, d); }
Metric value(std::string_view id, double v) { return Metric::gauge(id, v); }

/// The manual clock of these tests: Unix milliseconds that the test sets.
std::atomic<std::int64_t> manual_now{1'000'000};
std::int64_t manual_clock() noexcept { return manual_now.load(); }

MapOptions with_ttl(std::chrono::milliseconds ttl, Shards shards = Shards{4})
{
    return MapOptions{shards, ttl, &manual_clock};
}

/// Memory-only stamps (no log): time from the manual clock.
Stamp now() { return {0, manual_now.load()}; }

double gauge(const MemoryMap& map, std::string_view id)
{
    const auto m = map.get(Kind::gauge, id);
    return m ? m->value : 0;
}

std::int64_t counter(const MemoryMap& map, std::string_view id)
{
    const auto m = map.get(Kind::counter, id);
    return m ? m->delta : 0;
}

OwnedMetric owned(std::string id, Kind kind, double v, std::int64_t d, std::int64_t at, std::uint64_t seq)
{
    return {std::move(id), kind, v, d, at, seq};
}

}  // namespace

TEST_CASE("a counter update adds its delta and a gauge update replaces its value")
{
    MemoryMap map{MapOptions{Shards{4}}};
    REQUIRE(map.update(delta("hits", 5), now()));
    CHECK(counter(map, "hits") == 5);
    CHECK(*map.update(delta("hits", -7), now()) == delta("hits", -2));
    CHECK(map.update(delta("hits", std::numeric_limits<std::int64_t>::min()), now()).error() == Errc::counter_overflow);
    CHECK(counter(map, "hits") == -2);

    REQUIRE(map.update(value("load", 1.5), now()));
    CHECK(*map.update(value("load", -0.25), now()) == value("load", -0.25));
    CHECK(gauge(map, "load") == -0.25);
    CHECK(map.get(Kind::counter, "load").error() == Errc::not_found);
    CHECK(map.size() == 2);
}

TEST_CASE("any shard count works: it is rounded up to a power of two")
{
    for (std::size_t n : std::initializer_list<std::size_t>{0, 1, 3, 64, 100}) {
        MemoryMap map{MapOptions{Shards{n}}};
        for (int i = 0; i < 50; ++i)
            REQUIRE(map.update(delta("c" + std::to_string(i), i), now()));
        CHECK(map.size() == 50);
        CHECK(counter(map, "c49") == 49);
    }
}

TEST_CASE("each metric keeps the time and sequence number of its last change")
{
    MemoryMap map{with_ttl(0ms)};
    REQUIRE(map.update(value("g", 1), {7, 5000}));
    REQUIRE(map.update(delta("c", 2), {8, 5001}));
    REQUIRE(map.update(delta("c", 3), {9, 6000}));
    CHECK(map.list() == std::vector<OwnedMetric>{owned("c", Kind::counter, 0, 5, 6000, 9),
                                                 owned("g", Kind::gauge, 1, 0, 5000, 7)});
    CHECK(map.max_seq() == 9);
}

TEST_CASE("replayed changes that an entry already holds change nothing")
{
    MemoryMap map{with_ttl(0ms)};
    REQUIRE(map.update(delta("c", 10), {5, 100}));

    SUBCASE("an update at or below the entry's seq answers the current metric") {
        CHECK(*map.update(delta("c", 1), {5, 200}) == delta("c", 10));
        CHECK(*map.update(delta("c", 1), {4, 200}) == delta("c", 10));
        CHECK(*map.update(delta("c", 1), {6, 200}) == delta("c", 11));
        CHECK(map.list().front().seq == 6);
    }
    SUBCASE("a batch takes consecutive sequence numbers, each element checked on its own") {
        // Elements 5, 6, 7: the first is already in the entry, the next two are not.
        const std::vector<Metric> batch{delta("c", 1), delta("c", 2), value("g", 3)};
        std::vector<Metric> stored;
        REQUIRE(map.update_batch(batch, &stored, {5, 300}));
        CHECK(stored == std::vector<Metric>{delta("c", 10), delta("c", 12), value("g", 3)});
        const auto all = map.list();
        REQUIRE(all.size() == 2);
        CHECK(all[0].seq == 6);
        CHECK(all[1].seq == 7);
        // The same batch replayed again: nothing changes.
        REQUIRE(map.update_batch(batch, &stored, {5, 300}));
        CHECK(stored == std::vector<Metric>{delta("c", 12), delta("c", 12), value("g", 3)});
        CHECK(map.list() == all);
    }
    SUBCASE("a removal older than the entry's last change removes nothing") {
        CHECK(map.remove(Kind::counter, "c", {4, 300}).error() == Errc::not_found);
        CHECK(counter(map, "c") == 10);
        CHECK(*map.remove(Kind::counter, "c", {6, 300}) == delta("c", 10));
        CHECK(map.get(Kind::counter, "c").error() == Errc::not_found);
    }
}

TEST_CASE("a batch is applied in order and reports each element's state right after it")
{
    MemoryMap map;
    REQUIRE(map.update(delta("c", 10), now()));
    const std::vector<Metric> batch{delta("c", 1), value("g", 1), delta("c", 2), value("g", 2), delta("n", 4)};
    std::vector<Metric> stored;
    REQUIRE(map.update_batch(batch, &stored, now()));
    CHECK(stored == std::vector<Metric>{delta("c", 11), value("g", 1), delta("c", 13), value("g", 2), delta("n", 4)});
    CHECK(counter(map, "c") == 13);
    CHECK(gauge(map, "g") == 2);

    SUBCASE("without a result vector") {
        REQUIRE(map.update_batch(batch, nullptr, now()));
        CHECK(counter(map, "c") == 16);
    }
    SUBCASE("new names that repeat get one metric each, per kind") {
        const std::vector<Metric> fresh{delta("x", 1), value("y", 1.5), delta("x", 2), value("y", 2.5), value("x", 9)};
        REQUIRE(map.update_batch(fresh, &stored, now()));
        CHECK(stored == std::vector<Metric>{delta("x", 1), value("y", 1.5), delta("x", 3), value("y", 2.5), value("x", 9)});
        CHECK(map.size() == 6);
    }
}

TEST_CASE("a batch whose third element overflows changes nothing, times and seqs included")
{
    MemoryMap map{with_ttl(0ms, Shards{8})};
    REQUIRE(map.update(delta("big", int64_max - 1), {1, 10}));
    REQUIRE(map.update(value("g", 7), {2, 10}));
    REQUIRE(map.update(delta("c", 1), {3, 10}));
    const auto before = map.list();
    const std::vector<Metric> batch{delta("c", 5),   value("g", 9),  value("fresh", 1), delta("c", 5),
                                    delta("big", 1), delta("new", 3), delta("new", 3),  delta("big", 1)};
    std::vector<Metric> stored{value("left", 1)};
    CHECK(map.update_batch(batch, &stored, {10, 20}).error() == Errc::counter_overflow);
    CHECK(stored.empty());
    CHECK(map.list() == before);
    CHECK(map.get(Kind::counter, "new").error() == Errc::not_found);
    CHECK(map.get(Kind::gauge, "fresh").error() == Errc::not_found);
}

TEST_CASE("updating, reading or removing an existing metric does not allocate")
{
    MemoryMap map;
    const std::string long_name(200, 'n');  // not in the small-string buffer
    REQUIRE(map.update(value(long_name, 1), now()));
    REQUIRE(map.update(delta(long_name, 1), now()));
    const std::vector<Metric> batch{value(long_name, 2), delta(long_name, 2), delta(long_name, 3)};
    std::vector<Metric> stored;
    REQUIRE(map.update_batch(batch, &stored, now()));  // warms the per-thread scratch and `stored`
    REQUIRE(map.update(value("other", 1), now()));
    REQUIRE(map.remove(Kind::gauge, "other", now()));  // warms the retired list

    const std::size_t before = test::thread_allocations();
    CHECK(map.update(value(long_name, 3), now()));
    CHECK(map.update(delta(long_name, 1), now()));
    CHECK(map.get(Kind::gauge, long_name));
    CHECK(map.get(Kind::counter, long_name));
    CHECK(map.get(Kind::counter, "absent").error() == Errc::not_found);
    CHECK(map.update_batch(batch, &stored, now()));
    CHECK(map.remove(Kind::gauge, long_name, now()));
    CHECK(test::thread_allocations() == before);
}

TEST_CASE("list is sorted by name, a gauge before a counter of the same name")
{
    MemoryMap map{with_ttl(0ms, Shards{2})};
    REQUIRE(map.update(delta("b", 1), now()));
    REQUIRE(map.update(value("b", 2), now()));
    REQUIRE(map.update(value("a", 3), now()));
    REQUIRE(map.update(delta("ab", 4), now()));
    REQUIRE(map.update(value("B", 5), now()));
    const std::int64_t t = manual_now.load();
    CHECK(map.list() == std::vector<OwnedMetric>{owned("B", Kind::gauge, 5, 0, t, 0), owned("a", Kind::gauge, 3, 0, t, 0),
                                                 owned("ab", Kind::counter, 0, 4, t, 0),
                                                 owned("b", Kind::gauge, 2, 0, t, 0),
                                                 owned("b", Kind::counter, 0, 1, t, 0)});
}

TEST_CASE("restore replaces the content, keeping seq and update time")
{
    MemoryMap map{with_ttl(0ms)};
    REQUIRE(map.update(value("old", 1), now()));
    const std::vector<OwnedMetric> snapshot{owned("c", Kind::counter, 0, 41, 5, 1), owned("g", Kind::gauge, 0.5, 0, 0, 3),
                                            owned("c", Kind::counter, 0, 42, 6, 2)};
    map.restore(snapshot);
    // updated_at 0 (unknown) is stamped with the clock's now.
    CHECK(map.list() == std::vector<OwnedMetric>{owned("c", Kind::counter, 0, 42, 6, 2),
                                                 owned("g", Kind::gauge, 0.5, 0, manual_now.load(), 3)});
    CHECK(map.max_seq() == 3);
    CHECK(map.size() == 2);
}

TEST_CASE("remove answers the last value, and a removed counter starts again from 0")
{
    MemoryMap map;
    REQUIRE(map.update(delta("c", 5), now()));
    REQUIRE(map.update(value("g", 2.5), now()));

    const auto gone = map.remove(Kind::counter, "c", now());
    REQUIRE(gone);
    CHECK(*gone == delta("c", 5));
    CHECK(map.get(Kind::counter, "c").error() == Errc::not_found);
    CHECK(map.remove(Kind::counter, "c", now()).error() == Errc::not_found);
    CHECK(map.remove(Kind::counter, "g", now()).error() == Errc::not_found);  // the other kind
    CHECK(map.size() == 1);
    CHECK(map.removed() == 1);

    CHECK(*map.update(delta("c", 3), now()) == delta("c", 3));
    CHECK(*map.remove(Kind::gauge, "g", now()) == value("g", 2.5));
    CHECK(map.list() == std::vector<OwnedMetric>{owned("c", Kind::counter, 0, 3, manual_now.load(), 0)});

    SUBCASE("a batch after a removal starts from 0 too") {
        REQUIRE(map.remove(Kind::counter, "c", now()));
        std::vector<Metric> stored;
        const std::vector<Metric> batch{delta("c", 4), delta("c", 1)};
        REQUIRE(map.update_batch(batch, &stored, now()));
        CHECK(stored == std::vector<Metric>{delta("c", 4), delta("c", 5)});
    }
}

TEST_CASE("names removed and inserted again many times keep the table small and exact")
{
    MemoryMap map{MapOptions{Shards{1}}};
    for (int batch = 0; batch < 200; ++batch) {
        for (int i = 0; i < 50; ++i)
            REQUIRE(map.update(delta("r" + std::to_string(batch * 50 + i), 1), now()));
        for (int i = 0; i < 50; ++i)
            REQUIRE(map.remove(Kind::counter, "r" + std::to_string(batch * 50 + i), now()));
    }
    CHECK(map.size() == 0);
    CHECK(map.list().empty());
    REQUIRE(map.update(delta("r0", 2), now()));
    CHECK(counter(map, "r0") == 2);
}

TEST_CASE("a metric not updated within the ttl is absent, and its next update starts from scratch")
{
    manual_now = 1'000'000;
    MemoryMap map{with_ttl(100ms)};
    REQUIRE(map.update(delta("c", 5), now()));
    REQUIRE(map.update(value("g", 1), now()));

    manual_now += 100;  // exactly ttl old: still live
    CHECK(counter(map, "c") == 5);
    CHECK(map.list().size() == 2);

    manual_now += 1;
    CHECK(map.get(Kind::counter, "c").error() == Errc::not_found);
    CHECK(map.get(Kind::gauge, "g").error() == Errc::not_found);
    CHECK(map.list().empty());
    CHECK(map.size() == 2);  // not swept yet

    SUBCASE("an update restarts a counter from its delta") {
        CHECK(*map.update(delta("c", 2), now()) == delta("c", 2));
        CHECK(map.list() == std::vector<OwnedMetric>{owned("c", Kind::counter, 0, 2, manual_now.load(), 0)});
    }
    SUBCASE("a batch restarts it too") {
        std::vector<Metric> stored;
        const std::vector<Metric> batch{delta("c", 2), delta("c", 1)};
        REQUIRE(map.update_batch(batch, &stored, now()));
        CHECK(stored == std::vector<Metric>{delta("c", 2), delta("c", 3)});
    }
    SUBCASE("removing an expired metric answers not found, and counts it as expired") {
        CHECK(map.remove(Kind::counter, "c", now()).error() == Errc::not_found);
        CHECK(map.size() == 1);
        CHECK(map.expired() == 1);
        CHECK(map.removed() == 0);
    }
    SUBCASE("the sweep collects both, and expire() removes them") {
        std::vector<std::pair<Kind, std::string>> found;
        std::size_t cursor = 0;
        map.collect_expired(manual_now.load(), 1000, cursor, found);
        std::sort(found.begin(), found.end());
        CHECK(found == std::vector<std::pair<Kind, std::string>>{{Kind::gauge, "g"}, {Kind::counter, "c"}});
        REQUIRE(map.update(value("g", 3), now()));  // updated since it was collected: kept
        CHECK_FALSE(map.expire(Kind::gauge, "g", now()));
        CHECK(map.expire(Kind::counter, "c", now()));
        CHECK_FALSE(map.expire(Kind::counter, "c", now()));
        CHECK(map.size() == 1);
        CHECK(gauge(map, "g") == 3);
        CHECK(map.expired() == 1);
    }
}

TEST_CASE("the expiry sweep visits every slot in bounded steps and finds each expired metric once a pass")
{
    manual_now = 2'000'000;
    MemoryMap map{with_ttl(1000ms, Shards{4})};
    for (int i = 0; i < 300; ++i)
        REQUIRE(map.update(delta("old" + std::to_string(i), 1), now()));
    manual_now += 5000;
    for (int i = 0; i < 100; ++i)
        REQUIRE(map.update(value("new" + std::to_string(i), 1), now()));

    std::vector<std::pair<Kind, std::string>> found;
    std::size_t cursor = 0;
    int steps = 0;
    do {
        const std::size_t before = found.size();
        map.collect_expired(manual_now.load(), 16, cursor, found);
        CHECK(found.size() - before <= 16);
        ++steps;
        REQUIRE(steps < 10000);
    } while (cursor != 0);
    CHECK(steps > 10);
    std::sort(found.begin(), found.end());
    CHECK(std::unique(found.begin(), found.end()) == found.end());
    CHECK(found.size() == 300);
    for (const auto& [kind, name] : found) {
        CHECK(kind == Kind::counter);
        CHECK(map.expire(kind, name, now()));
    }
    CHECK(map.size() == 100);
    CHECK(map.expired() == 300);

    SUBCASE("with no ttl it does nothing") {
        MemoryMap forever{MapOptions{Shards{4}}};
        REQUIRE(forever.update(delta("x", 1), now()));
        std::size_t c = 0;
        found.clear();
        forever.collect_expired(manual_now.load() + 1'000'000, 100, c, found);
        CHECK(found.empty());
        CHECK(c == 0);
    }
}

TEST_CASE("concurrent counter increments on shared names are exact")
{
    MemoryMap map{MapOptions{Shards{4}}};
    const std::vector<std::string> names{"a", "b", "c", "d", "e", "f", "g", "h"};
    constexpr int threads = 4;
    constexpr int increments = 10000;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (int i = 0; i < increments; ++i)
                if (!map.update(delta(names[static_cast<std::size_t>(i + t) % names.size()], 1), now()))
                    std::abort();
        });
    for (auto& th : pool)
        th.join();
    for (const auto& name : names)
        CHECK(counter(map, name) == threads * increments / static_cast<std::int64_t>(names.size()));
}

TEST_CASE("removals racing single updates lose no increment")
{
    // Every increment either is in a removal's answer or in the final total: an update that
    // found an entry just before its removal must not land in the removed entry. The updaters
    // go on until the remover has removed many times, so that the two overlap.
    MemoryMap map{MapOptions{Shards{2}}};
    constexpr int threads = 3;
    constexpr int increments = 20000;
    std::atomic<bool> done{false};
    std::atomic<std::int64_t> added{0};
    std::int64_t removed_sum = 0;
    std::thread remover{[&] {
        while (!done.load())
            for (const char* name : {"x", "y"})
                if (auto r = map.remove(Kind::counter, name, now()))
                    removed_sum += r->delta;
    }};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            int i = 0;
            for (; i < increments || map.removed() < 200; ++i)
                if (!map.update(delta((i + t) % 2 == 0 ? "x" : "y", 1), now()))
                    std::abort();
            added += i;
        });
    for (auto& th : pool)
        th.join();
    done.store(true);
    remover.join();
    CHECK(removed_sum + counter(map, "x") + counter(map, "y") == added.load());
}

TEST_CASE("removals racing batches see whole batches only")
{
    // Batches add 1 twice to "a" and once to "b"; a remover takes "a" away. Each removal answers
    // a count that whole batches made, and nothing is lost: removed + final == 2 * batches.
    MemoryMap map{MapOptions{Shards{8}}};
    constexpr int min_batches = 20000;
    std::atomic<bool> done{false};
    std::int64_t removed_sum = 0;
    std::thread remover{[&] {
        while (!done.load())
            if (auto r = map.remove(Kind::counter, "a", now()))
                removed_sum += r->delta;
    }};
    int batches = 0;
    std::thread writer{[&] {
        const std::vector<Metric> batch{delta("a", 1), value("g", 1), delta("b", 1), delta("a", 1)};
        for (; batches < min_batches || map.removed() < 200; ++batches)
            if (!map.update_batch(batch, nullptr, now()))
                std::abort();
        done.store(true);
    }};
    writer.join();
    remover.join();
    CHECK(removed_sum % 2 == 0);  // never half of a batch
    CHECK(removed_sum + counter(map, "a") == 2 * std::int64_t{batches});
    CHECK(counter(map, "b") == batches);
}

TEST_CASE("concurrent batches over overlapping names in different orders neither deadlock nor lose updates")
{
    MemoryMap map{MapOptions{Shards{8}}};
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
                if (!map.update_batch(batch, &stored, now()))
                    std::abort();
                if (i % 100 == 0 && map.list().size() != names.size())  // listing meanwhile
                    std::abort();
            }
        });
    for (auto& th : pool)
        th.join();
    for (const auto& n : names)
        CHECK(counter(map, n) == threads * batches);
}

TEST_CASE("a reader never sees part of a batch, nor any of a batch that failed")
{
    MemoryMap map{MapOptions{Shards{4}}};
    REQUIRE(map.update(delta("a", 0), now()));
    REQUIRE(map.update(delta("b", 0), now()));
    REQUIRE(map.update(value("g", 0.5), now()));
    REQUIRE(map.update(delta("full", int64_max), now()));
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
            if (!map.update_batch(good, nullptr, now()) ||
                map.update_batch(bad, nullptr, now()).error() != Errc::counter_overflow)
                std::abort();
        done.store(true);
    }};
    int behind = 0, dirty = 0, reads = 0;
    while (!done.load() || reads == 0) {
        const std::int64_t a = counter(map, "a");
        const std::int64_t b = counter(map, "b");
        behind += b < a ? 1 : 0;
        dirty += gauge(map, "g") != 0.5 || map.get(Kind::gauge, "ghost") ? 1 : 0;
        ++reads;
    }
    writer.join();
    CHECK(behind == 0);
    CHECK(dirty == 0);
    CHECK(counter(map, "a") == batches);
    CHECK(counter(map, "b") == batches);
}

TEST_CASE("single updates and batches on the same counters and gauges, from several threads, add up exactly")
{
    MemoryMap map{MapOptions{Shards{2}}};
    const std::vector<std::string> names{"s0", "s1", "s2", "s3", "s4", "s5"};
    REQUIRE(map.update(delta("full", int64_max), now()));
    constexpr int threads = 4;
    constexpr int iterations = 7200;  // a multiple of names.size()
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            std::vector<Metric> good;
            for (const auto& n : names)
                good.push_back(delta(n, 2));
            good.push_back(value("shared", t));
            std::vector<Metric> bad = good;
            bad.push_back(delta("full", 1));
            for (int i = 0; i < iterations; ++i) {
                const auto& name = names[static_cast<std::size_t>(i + t) % names.size()];
                const bool ok = t % 2 == 0
                                    ? bool(map.update(delta(name, 1), now())) && bool(map.update(value("shared", t), now()))
                                    : bool(map.update_batch(good, nullptr, now())) &&
                                          map.update_batch(bad, nullptr, now()).error() == Errc::counter_overflow;
                if (!ok)
                    std::abort();
            }
        });
    for (auto& th : pool)
        th.join();
    for (const auto& n : names)
        CHECK(counter(map, n) == 2 * iterations / static_cast<std::int64_t>(names.size()) + 2 * 2 * iterations);
    CHECK(counter(map, "full") == int64_max);
    const double last = gauge(map, "shared");
    CHECK((last >= 0 && last < threads && last == static_cast<int>(last)));
}

namespace {

MapOptions capped(std::size_t cap, std::chrono::milliseconds ttl = 0ms)
{
    MapOptions o{Shards{4}, ttl, &manual_clock};
    o.max_metrics = cap;
    return o;
}

std::string name_of(std::size_t i) { return "m" + std::to_string(i); }

}  // namespace

TEST_CASE("the cap admits exactly N metrics, gauges and counters together, and refuses the next")
{
    MemoryMap map{capped(4)};
    REQUIRE(map.update(value("g1", 1), now()));
    REQUIRE(map.update(value("g2", 2), now()));
    REQUIRE(map.update(delta("c1", 1), now()));
    REQUIRE(map.update(delta("g1", 1), now()));  // a counter named like a gauge is another metric
    CHECK(map.count() == 4);
    CHECK(map.update(value("g3", 3), now()).error() == Errc::too_many_metrics);
    CHECK(map.update(delta("c2", 3), now()).error() == Errc::too_many_metrics);
    CHECK(map.get(Kind::gauge, "g3").error() == Errc::not_found);
    CHECK(map.get(Kind::counter, "c2").error() == Errc::not_found);
    CHECK(map.count() == 4);
    CHECK(map.size() == 4);
    CHECK(map.refused() == 2);
    // Existing metrics keep updating at the cap.
    CHECK(map.update(value("g1", 10), now())->value == 10);
    CHECK(map.update(delta("c1", 5), now())->delta == 6);
    core::Result<Metric> out{Metric{}};
    map.update_into(value("g2", 7), now(), out);
    CHECK(out->value == 7);
    CHECK(map.update_batch(std::vector{value("g1", 11), delta("c1", 1)}, nullptr, now()));
    CHECK(counter(map, "c1") == 7);
    CHECK(map.refused() == 2);
}

TEST_CASE("a batch whose new names pass the cap is refused whole; one that fits exactly is applied")
{
    MemoryMap map{capped(5)};
    REQUIRE(map.update(value("a", 1), now()));
    REQUIRE(map.update(delta("b", 1), now()));
    // Three existing or new updates plus four new names: 2 + 4 > 5.
    const std::vector straddling{value("a", 2), delta("b", 2), value("n1", 1), value("n2", 1), delta("n3", 1),
                                 value("n4", 1)};
    std::vector<Metric> stored;
    CHECK(map.update_batch(straddling, &stored, now()).error() == Errc::too_many_metrics);
    CHECK(stored.empty());
    CHECK(gauge(map, "a") == 1);
    CHECK(counter(map, "b") == 1);
    for (const char* id : {"n1", "n2", "n4"})
        CHECK(map.get(Kind::gauge, id).error() == Errc::not_found);
    CHECK(map.get(Kind::counter, "n3").error() == Errc::not_found);
    CHECK(map.count() == 2);
    CHECK(map.refused() == 1);
    // A new name repeated in a batch counts once: 2 + 3 == 5.
    const std::vector fitting{value("n1", 1), value("n1", 2), delta("n3", 1), delta("n3", 1), value("n2", 1),
                              delta("b", 1)};
    REQUIRE(map.update_batch(fitting, &stored, now()));
    CHECK(map.count() == 5);
    CHECK(map.size() == 5);
    CHECK(gauge(map, "n1") == 2);
    CHECK(counter(map, "n3") == 2);
    CHECK(map.update_batch(std::vector{value("n9", 1)}, nullptr, now()).error() == Errc::too_many_metrics);
}

TEST_CASE("a batch that overflows a counter gives back the room its new names claimed")
{
    MemoryMap map{capped(3)};
    REQUIRE(map.update(delta("big", int64_max), now()));
    CHECK(map.update_batch(std::vector{value("x", 1), value("y", 1), delta("big", 1)}, nullptr, now()).error() ==
          Errc::counter_overflow);
    CHECK(map.count() == 1);
    CHECK(map.update_batch(std::vector{value("x", 1), value("y", 1)}, nullptr, now()));
    CHECK(map.count() == 3);
}

TEST_CASE("a deleted metric frees its room at once")
{
    MemoryMap map{capped(2)};
    REQUIRE(map.update(value("a", 1), now()));
    REQUIRE(map.update(value("b", 1), now()));
    REQUIRE(map.update(value("c", 1), now()).error() == Errc::too_many_metrics);
    REQUIRE(map.remove(Kind::gauge, "a", now()));
    CHECK(map.count() == 1);
    CHECK(map.update(value("c", 1), now()));
    CHECK(map.update(value("a", 1), now()).error() == Errc::too_many_metrics);
    CHECK(map.count() == 2);
}

TEST_CASE("an expired metric frees its room when the sweep removes it; an update restarts it without adding one")
{
    manual_now = 5'000'000;
    MemoryMap map{capped(2, 100ms)};
    REQUIRE(map.update(delta("old", 5), now()));
    REQUIRE(map.update(value("kept", 1), now()));
    manual_now += 101;
    REQUIRE(map.update(value("kept", 2), now()));
    // Expired, not yet swept: still counted, and updating it restarts it (not a new metric).
    CHECK(map.update(value("new", 1), now()).error() == Errc::too_many_metrics);
    CHECK(map.update(delta("old", 1), now())->delta == 1);
    CHECK(map.count() == 2);
    manual_now += 101;
    REQUIRE(map.update(value("kept", 3), now()));
    REQUIRE(map.expire(Kind::counter, "old", now()));
    CHECK(map.count() == 1);
    CHECK(map.update(value("new", 1), now()));
    CHECK(map.count() == 2);
}

TEST_CASE("restore keeps every metric whatever the cap, which then refuses only new names")
{
    MemoryMap map{capped(2)};
    map.restore(std::vector{owned("a", Kind::gauge, 1, 0, 0, 1), owned("b", Kind::gauge, 1, 0, 0, 2),
                            owned("c", Kind::counter, 0, 4, 0, 3)});
    CHECK(map.count() == 3);
    CHECK(map.update(value("a", 2), now()));
    CHECK(map.update(delta("c", 1), now())->delta == 5);
    CHECK(map.update(value("d", 1), now()).error() == Errc::too_many_metrics);
    REQUIRE(map.remove(Kind::gauge, "a", now()));
    REQUIRE(map.remove(Kind::gauge, "b", now()));
    CHECK(map.update(value("d", 1), now()));
    map.restore({});
    CHECK(map.count() == 0);
}

TEST_CASE("no cap (0) admits any number of metrics, still counted")
{
    MemoryMap map{capped(0)};
    for (std::size_t i = 0; i < 1000; ++i)
        REQUIRE(map.update(value(name_of(i), 1), now()));
    CHECK(map.count() == 1000);
    CHECK(map.refused() == 0);
}

TEST_CASE("threads racing to add names past the cap store exactly the cap, single updates and batches alike")
{
    constexpr std::size_t cap = 1000;
    MemoryMap map{capped(cap)};
    std::atomic<std::size_t> admitted{0};
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            std::vector<std::string> names;
            for (std::size_t i = 0; i < 600; ++i)
                names.push_back(name_of(t * 10'000 + i));
            for (std::size_t i = 0; i < names.size(); i += 2) {
                if (t % 2 == 0) {
                    const std::vector batch{value(names[i], 1), value(names[i + 1], 1)};
                    if (map.update_batch(batch, nullptr, now()))
                        admitted += 2;
                } else {
                    admitted += map.update(value(names[i], 1), now()) ? 1 : 0;
                    admitted += map.update(value(names[i + 1], 1), now()) ? 1 : 0;
                }
            }
        });
    for (auto& t : threads)
        t.join();
    CHECK(map.size() == admitted.load());
    CHECK(map.count() == map.size());
    CHECK(map.size() <= cap);
    CHECK(map.size() >= cap - 1);  // a refused batch of two may leave one place free
    CHECK(map.refused() > 0);
}
