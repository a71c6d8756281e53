#include "agent/batch_queue.hpp"
#include "agent/drop_oldest_queue.hpp"

#include "support/run.hpp"

#include <doctest/doctest.h>

#include <vector>

TEST_CASE("a full queue drops its oldest item and counts it")
{
    agent::DropOldestQueue<int> q{2};
    std::vector<int> evicted;
    for (int i = 1; i <= 5; ++i)
        if (auto e = q.push(i))
            evicted.push_back(*e);
    CHECK(evicted == std::vector<int>{1, 2, 3});
    CHECK(q.dropped() == 3);
    CHECK(q.size() == 2);
    CHECK(q.pop() == 4);
    CHECK(q.pop() == 5);
    CHECK(q.pop() == std::nullopt);
    CHECK(q.dropped() == 3);
}

TEST_CASE("a queue below capacity keeps everything in order")
{
    agent::DropOldestQueue<int> q{3};
    CHECK(q.push(1) == std::nullopt);
    CHECK(q.push(2) == std::nullopt);
    CHECK(q.pop() == 1);
    CHECK(q.push(3) == std::nullopt);
    CHECK(q.push(4) == std::nullopt);
    CHECK(q.pop() == 2);
    CHECK(q.dropped() == 0);
}

namespace {

agent::Batch batch(std::uint64_t sequence)
{
    agent::Batch b;
    b.sequence = sequence;
    return b;
}

asio::awaitable<void> drop_oldest_and_end_each_consumer()
{
    agent::BatchQueue q{co_await asio::this_coro::executor, 2, 2};
    std::vector<std::uint64_t> evicted;
    for (std::uint64_t i = 1; i <= 5; ++i)
        if (auto e = q.push(batch(i)))
            evicted.push_back(e->sequence);
    CHECK(evicted == std::vector<std::uint64_t>{1, 2, 3});
    CHECK(q.dropped() == 3);
    q.close();

    auto first = co_await q.pop();
    REQUIRE(first);
    CHECK(first->sequence == 4);
    auto second = co_await q.pop();
    REQUIRE(second);
    CHECK(second->sequence == 5);
    auto end1 = co_await q.pop();  // one end per consumer
    auto end2 = co_await q.pop();
    CHECK(!end1);
    CHECK(!end2);
}

// `q`, `got` and `ended` belong to the caller, which outlives this coroutine.
asio::awaitable<void> consume(agent::BatchQueue& q, std::vector<std::uint64_t>& got, bool& ended)
{
    for (;;) {
        auto b = co_await q.pop();
        if (!b)
            break;
        got.push_back(b->sequence);
    }
    ended = true;
}

asio::awaitable<void> wake_a_waiting_consumer()
{
    auto ex = co_await asio::this_coro::executor;
    agent::BatchQueue q{ex, 4, 1};
    std::vector<std::uint64_t> got;
    bool ended = false;
    asio::co_spawn(ex, consume(q, got, ended), asio::detached);
    co_await asio::post(ex, asio::use_awaitable);  // the consumer is now waiting
    CHECK(!q.push(batch(7)));
    co_await asio::post(ex, asio::use_awaitable);
    CHECK(got == std::vector<std::uint64_t>{7});
    CHECK(!q.push(batch(8)));
    q.close();
    for (int i = 0; i < 3; ++i)
        co_await asio::post(ex, asio::use_awaitable);
    CHECK(got == std::vector<std::uint64_t>{7, 8});
    CHECK(ended);
}

}  // namespace

TEST_CASE("the batch queue hands batches to consumers, drops the oldest, and ends each consumer once")
{
    test::run(drop_oldest_and_end_each_consumer());
}

TEST_CASE("a waiting consumer wakes when a batch arrives")
{
    test::run(wake_a_waiting_consumer());
}
