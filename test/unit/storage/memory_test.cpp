#include "storage/memory.hpp"

#include "support/run.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace {

using core::Errc;
using core::Kind;
using core::Metric;
using storage::MemoryStorage;
using storage::Op;
using storage::Request;

Metric delta(std::string_view id, std::int64_t d) { return Metric::counter(id, d); }
Metric value(std::string_view id, double v) { return Metric::gauge(id, v); }

std::atomic<std::int64_t> manual_now{5'000};
std::int64_t manual_clock() noexcept { return manual_now.load(); }

}  // namespace

TEST_CASE("the memory store answers every operation at once, stamped with its clock")
{
    MemoryStorage memory{storage::MapOptions{storage::Shards{4}, std::chrono::milliseconds{0}, &manual_clock}};
    storage::Storage& store = memory;
    CHECK(store.answers_now());

    auto r = store.try_now({Op::update, delta("hits", 5)});
    REQUIRE(r);
    CHECK(**r == delta("hits", 5));
    CHECK(store.try_now({Op::update, delta("hits", std::numeric_limits<std::int64_t>::max())})->error() ==
          Errc::counter_overflow);
    CHECK(**store.try_now({Op::get, delta("hits", 0)}) == delta("hits", 5));
    CHECK(store.try_now({Op::get, value("hits", 0)})->error() == Errc::not_found);

    std::vector<Metric> stored;
    const std::vector<Metric> batch{delta("hits", 1), value("g", 2)};
    REQUIRE(*store.try_now({Op::update_batch, {}, batch, &stored}));
    CHECK(stored == std::vector<Metric>{delta("hits", 6), value("g", 2)});
    CHECK(memory.map().list().front().updated_at == 5'000);

    CHECK(**store.try_now({Op::remove, value("g", 0)}) == value("g", 2));
    CHECK(store.try_now({Op::remove, value("g", 0)})->error() == Errc::not_found);
}

TEST_CASE("through run() the memory store behaves the same")
{
    MemoryStorage memory;
    storage::Storage& store = memory;
    test::run([](storage::Storage& s) -> asio::awaitable<void> {
        // Each co_await is its own statement: see core/asio.hpp.
        const auto applied = co_await s.run({Op::update, delta("c", 2)});
        CHECK(*applied == delta("c", 2));
        std::vector<Metric> stored;
        const std::vector<Metric> batch{delta("c", 3), value("g", 1)};
        const auto batched = co_await s.run({Op::update_batch, {}, batch, &stored});
        CHECK(batched);
        CHECK(stored == std::vector<Metric>{delta("c", 5), value("g", 1)});
        const auto got = co_await s.run({Op::get, delta("c", 0)});
        CHECK(got->delta == 5);
        const auto removed = co_await s.run({Op::remove, delta("c", 0)});
        CHECK(removed->delta == 5);
        const auto all = co_await s.list();
        CHECK(all->size() == 1);
        const bool healthy = co_await s.ping();
        CHECK(healthy);
        co_await s.close();
    }(store));
}

TEST_CASE("the memory store's sweep removes expired metrics in bounded steps")
{
    manual_now = 10'000;
    MemoryStorage memory{storage::MapOptions{storage::Shards{2}, std::chrono::milliseconds{100}, &manual_clock}};
    for (int i = 0; i < 40; ++i)
        REQUIRE(*memory.try_now({Op::update, delta("old" + std::to_string(i), 1)}));
    manual_now += 500;
    REQUIRE(*memory.try_now({Op::update, value("fresh", 1)}));
    CHECK(memory.try_now({Op::get, delta("old0", 0)})->error() == Errc::not_found);

    std::size_t removed = 0;
    for (int step = 0; step < 1000 && removed < 40; ++step)
        removed += memory.sweep_step(4);
    CHECK(removed == 40);
    CHECK(memory.map().size() == 1);
    CHECK(memory.map().expired() == 40);
    CHECK(memory.sweep_step(1000) == 0);
}
