#pragma once

#include "core/result.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace agent {

/// How one attempt to deliver a batch ended.
enum class Outcome {
    delivered,  ///< 2xx
    rejected,   ///< 4xx but 429 (or any other non-retryable answer): the server will not take it
    failed,     ///< connection error, timeout, 429 or 5xx: worth another try
};

/// Classifies an attempt: a transport error (connect, I/O, timeout, malformed answer: anything
/// but Errc::ok), else the status code.
Outcome classify(core::Errc transport, int status) noexcept;

/// A `Retry-After` value in delta-seconds ("120"); an HTTP-date or anything else: nullopt
/// (the schedule's own delay applies). Huge numbers saturate rather than fail.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value) noexcept;

/// Says what a sender does after each attempt on one batch: retry after 1 s, 3 s, 5 s (from
/// the failed attempt's end), then give up. A server's `Retry-After` replaces the pause it
/// applies to, capped at `max_retry_after`; the number of retries stays the same. Sans-I/O:
/// time is passed in, so tests use a manual clock. One schedule per batch being sent; `reset`
/// starts the next batch.
class RetrySchedule {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::array<std::chrono::milliseconds, 3> default_delays{
        std::chrono::seconds{1}, std::chrono::seconds{3}, std::chrono::seconds{5}};
    /// Longer waits are the server's mistake or a hostile answer: the queue behind this batch
    /// keeps filling, so the agent comes back after at most this much.
    static constexpr std::chrono::seconds max_retry_after{30};

    /// `delays` must outlive the schedule (a static array).
    explicit RetrySchedule(std::span<const std::chrono::milliseconds> delays = default_delays) noexcept
        : delays_(delays)
    {
    }

    enum class Action { done, retry, give_up };
    struct Next {
        Action action;
        Clock::time_point at{};  ///< when to retry (Action::retry only)
        friend bool operator==(const Next&, const Next&) = default;
    };

    /// After an attempt that ended at `now` with `outcome`; `retry_after`: the answer's
    /// Retry-After, if it had one.
    Next after(Outcome outcome, Clock::time_point now,
               std::optional<std::chrono::seconds> retry_after = std::nullopt) noexcept;
    /// Retries done so far for the current batch.
    std::size_t retries() const noexcept { return retries_; }
    void reset() noexcept { retries_ = 0; }

private:
    std::span<const std::chrono::milliseconds> delays_;
    std::size_t retries_ = 0;
};

}  // namespace agent
