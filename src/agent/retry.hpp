#pragma once

#include "core/result.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <span>

namespace agent {

/// How one attempt to deliver a batch ended.
enum class Outcome {
    delivered,  ///< 2xx
    rejected,   ///< 4xx (or any other non-retryable answer): the server will not take it
    failed,     ///< connection error, timeout or 5xx: worth another try
};

/// Classifies an attempt: a transport error (connect, I/O, timeout, malformed answer: anything
/// but Errc::ok), else the status code.
Outcome classify(core::Errc transport, int status) noexcept;

/// Says what a sender does after each attempt on one batch: retry after 1 s, 3 s, 5 s (from
/// the failed attempt's end), then give up. Sans-I/O: time is passed in, so tests use a
/// manual clock. One schedule per batch being sent; `reset` starts the next batch.
class RetrySchedule {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::array<std::chrono::milliseconds, 3> default_delays{
        std::chrono::seconds{1}, std::chrono::seconds{3}, std::chrono::seconds{5}};

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

    /// After an attempt that ended at `now` with `outcome`.
    Next after(Outcome outcome, Clock::time_point now) noexcept;
    /// Retries done so far for the current batch.
    std::size_t retries() const noexcept { return retries_; }
    void reset() noexcept { retries_ = 0; }

private:
    std::span<const std::chrono::milliseconds> delays_;
    std::size_t retries_ = 0;
};

}  // namespace agent
