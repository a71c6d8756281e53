#include "agent/retry.hpp"

#include <cstdint>

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using agent::Outcome;
using agent::RetrySchedule;
using Action = RetrySchedule::Action;

TEST_CASE("attempts are classified by transport error, then status")
{
    CHECK(agent::classify(core::Errc::ok, 200) == Outcome::delivered);
    CHECK(agent::classify(core::Errc::ok, 204) == Outcome::delivered);
    CHECK(agent::classify(core::Errc::ok, 500) == Outcome::failed);
    CHECK(agent::classify(core::Errc::ok, 503) == Outcome::failed);
    CHECK(agent::classify(core::Errc::ok, 429) == Outcome::failed);  // too many requests: later
    CHECK(agent::classify(core::Errc::ok, 400) == Outcome::rejected);
    CHECK(agent::classify(core::Errc::ok, 413) == Outcome::rejected);
    CHECK(agent::classify(core::Errc::ok, 301) == Outcome::rejected);
    CHECK(agent::classify(core::Errc::io_error, 0) == Outcome::failed);
    CHECK(agent::classify(core::Errc::timeout, 0) == Outcome::failed);
    CHECK(agent::classify(core::Errc::bad_request, 0) == Outcome::failed);  // a garbled answer
}

TEST_CASE("a failing batch is retried after 1 s, 3 s and 5 s, then given up")
{
    RetrySchedule schedule;
    RetrySchedule::Clock::time_point now{};  // the manual clock
    auto next = schedule.after(Outcome::failed, now);
    CHECK(next == RetrySchedule::Next{Action::retry, now + 1s});
    now = next.at + 200ms;  // the attempt itself took time: delays count from its end
    next = schedule.after(Outcome::failed, now);
    CHECK(next == RetrySchedule::Next{Action::retry, now + 3s});
    now = next.at;
    next = schedule.after(Outcome::failed, now);
    CHECK(next == RetrySchedule::Next{Action::retry, now + 5s});
    now = next.at;
    CHECK(schedule.retries() == 3);
    CHECK(schedule.after(Outcome::failed, now).action == Action::give_up);

    SUBCASE("the next batch starts a fresh schedule") {
        schedule.reset();
        CHECK(schedule.after(Outcome::failed, now) == RetrySchedule::Next{Action::retry, now + 1s});
    }
}

TEST_CASE("success ends the schedule at any attempt")
{
    RetrySchedule schedule;
    RetrySchedule::Clock::time_point now{};
    CHECK(schedule.after(Outcome::delivered, now).action == Action::done);
    REQUIRE(schedule.after(Outcome::failed, now).action == Action::retry);
    CHECK(schedule.after(Outcome::delivered, now + 1s).action == Action::done);
}

TEST_CASE("a rejected batch is never retried")
{
    RetrySchedule schedule;
    CHECK(schedule.after(Outcome::rejected, {}).action == Action::give_up);
    CHECK(schedule.retries() == 0);
}

TEST_CASE("a custom schedule is followed")
{
    static constexpr std::chrono::milliseconds delays[] = {10ms};
    RetrySchedule schedule{delays};
    CHECK(schedule.after(Outcome::failed, {}) == RetrySchedule::Next{Action::retry, RetrySchedule::Clock::time_point{} + 10ms});
    CHECK(schedule.after(Outcome::failed, {}).action == Action::give_up);
}

TEST_CASE("Retry-After in delta-seconds is read; anything else is not")
{
    CHECK(agent::parse_retry_after("10") == 10s);
    CHECK(agent::parse_retry_after(" 0 ") == 0s);
    CHECK(agent::parse_retry_after("99999999999999999999999") == std::chrono::seconds{std::int64_t{1} << 40});
    CHECK_FALSE(agent::parse_retry_after(""));
    CHECK_FALSE(agent::parse_retry_after("-1"));
    CHECK_FALSE(agent::parse_retry_after("1.5"));
    CHECK_FALSE(agent::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));  // HTTP-date: the schedule decides
}

TEST_CASE("a server's Retry-After replaces the scheduled pause, capped, and retries stay three")
{
    RetrySchedule schedule;
    RetrySchedule::Clock::time_point now{};
    CHECK(schedule.after(Outcome::failed, now, 10s) == RetrySchedule::Next{Action::retry, now + 10s});
    CHECK(schedule.after(Outcome::failed, now, 0s) == RetrySchedule::Next{Action::retry, now});

    SUBCASE("a huge value waits only max_retry_after") {
        CHECK(schedule.after(Outcome::failed, now, std::chrono::seconds{std::int64_t{1} << 40}) ==
              RetrySchedule::Next{Action::retry, now + RetrySchedule::max_retry_after});
        CHECK(schedule.after(Outcome::failed, now, 2s).action == Action::give_up);
    }
    SUBCASE("without one, the schedule's next pause applies") {
        CHECK(schedule.after(Outcome::failed, now) == RetrySchedule::Next{Action::retry, now + 5s});
    }
    SUBCASE("it does not turn a rejection or a success into a retry") {
        CHECK(schedule.after(Outcome::rejected, now, 1s).action == Action::give_up);
        CHECK(schedule.after(Outcome::delivered, now, 1s).action == Action::done);
    }
}
