#include "agent/retry.hpp"

namespace agent {

Outcome classify(core::Errc transport, int status) noexcept
{
    if (transport != core::Errc::ok)
        return Outcome::failed;
    if (status >= 200 && status < 300)
        return Outcome::delivered;
    if (status >= 500)
        return Outcome::failed;
    // 4xx, and answers no server of ours sends (1xx final, 3xx: we never follow redirects).
    return Outcome::rejected;
}

RetrySchedule::Next RetrySchedule::after(Outcome outcome, Clock::time_point now) noexcept
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
    return {Action::retry, now + delays_[retries_++]};
}

}  // namespace agent
