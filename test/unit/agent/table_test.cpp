#include "agent/table.hpp"

#include "core/json.hpp"

#include <doctest/doctest.h>

#include <vector>

TEST_CASE("a batch is one JSON array of every metric that parses back to the table's values")
{
    agent::MetricTable t;
    t.set_gauge("Alloc", 1);
    t.set_gauge("RandomValue", 0.123456789012345);
    t.set_gauge("Alloc", 123456.5);  // gauges overwrite
    t.add_counter("PollCount", 1);
    t.add_counter("PollCount", 2);  // counters accumulate

    const agent::Batch batch = t.take_batch();
    core::JsonCodec codec;
    std::vector<core::Metric> parsed;
    REQUIRE(codec.parse_batch(batch.body, parsed, 100));
    CHECK(parsed == std::vector<core::Metric>{core::Metric::gauge("Alloc", 123456.5),
                                              core::Metric::gauge("RandomValue", 0.123456789012345),
                                              core::Metric::counter("PollCount", 3)});
    CHECK(batch.counters == std::vector<std::pair<std::string, std::int64_t>>{{"PollCount", 3}});
    CHECK(t.counter("PollCount") == 0);  // taken by the batch

    SUBCASE("the next batch carries only what was counted since, and the latest gauges") {
        t.add_counter("PollCount", 1);
        const agent::Batch next = t.take_batch();
        CHECK(next.sequence == batch.sequence + 1);
        REQUIRE(codec.parse_batch(next.body, parsed, 100));
        REQUIRE(parsed.size() == 3);
        CHECK(parsed[0] == core::Metric::gauge("Alloc", 123456.5));
        CHECK(parsed[2] == core::Metric::counter("PollCount", 1));
    }
    SUBCASE("an undelivered batch's counts roll into the next batch") {
        t.add_counter("PollCount", 2);
        t.give_back(batch);
        CHECK(t.counter("PollCount") == 5);
        const agent::Batch next = t.take_batch();
        REQUIRE(codec.parse_batch(next.body, parsed, 100));
        CHECK(parsed.back() == core::Metric::counter("PollCount", 5));
    }
}

TEST_CASE("a poll count survives any number of failed reports")
{
    agent::MetricTable t;
    std::int64_t polls = 0;
    std::int64_t delivered = 0;
    for (int report = 0; report < 10; ++report) {
        for (int poll = 0; poll < 3; ++poll, ++polls)
            t.add_counter("PollCount", 1);
        const agent::Batch batch = t.take_batch();
        if (report % 3 == 1)
            t.give_back(batch);  // failed or dropped
        else
            delivered += batch.counters.front().second;
    }
    delivered += t.take_batch().counters.front().second;
    CHECK(delivered == polls);
}

TEST_CASE("metric names are escaped in the batch")
{
    agent::MetricTable t;
    t.set_gauge("quote\"name", 1);
    core::JsonCodec codec;
    std::vector<core::Metric> parsed;
    const agent::Batch batch = t.take_batch();
    REQUIRE(codec.parse_batch(batch.body, parsed, 10));
    REQUIRE(parsed.size() == 1);
    CHECK(parsed[0].id == "quote\"name");
}
