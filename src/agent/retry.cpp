#include "agent/retry.hpp"

#include <algorithm>
#include <cstdint>

namespace agent {

Outcome classify(core::Errc transport, int status) noexcept
{
    if (transport != core::Errc::ok)
        return Outcome::failed;
    if (status >= 200 && status < 300)
        return Outcome::delivered;
    if (status >= 500 || status == 429)  // 429 Too Many Requests: later, not never
        return Outcome::failed;
    // 4xx, and answers no server of ours sends (1xx final, 3xx: we never follow redirects).
    return Outcome::rejected;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value) noexcept
{
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
    if (value.empty())
        return std::nullopt;
    std::int64_t seconds = 0;
    constexpr std::int64_t saturated = std::int64_t{1} << 40;
    for (const char c : value) {
        if (c < '0' || c > '9')
            return std::nullopt;
        seconds = std::min(saturated, seconds * 10 + (c - '0'));
    }
    return std::chrono::seconds{seconds};
}

RetrySchedule::Next RetrySchedule::after(Outcome outcome, Clock::time_point now,
                                         std::optional<std::chrono::seconds> retry_after) noexcept
{
    switch (outcome) {
    case Outcome::delivered:
        return {Action::done};
    case Outcome::rejected:
        return {Action::give_up};
    case Outcome::failed:
        break;
    }
    if (retries_ >= delays_.size())
        return {Action::give_up};
    const std::chrono::milliseconds pause =
        retry_after ? std::chrono::milliseconds{std::min(*retry_after, max_retry_after)} : delays_[retries_];
    ++retries_;
    return {Action::retry, now + pause};
}

}  // namespace agent
