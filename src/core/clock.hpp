#pragma once

#include <cstdint>
#include <ctime>

namespace core {

/// The wall clock in Unix milliseconds. A plain function pointer so that tests can pass one that
/// reads a variable they set (a manual clock), and the hot path pays no virtual call.
using Clock = std::int64_t (*)() noexcept;

/// CLOCK_REALTIME in Unix milliseconds.
inline std::int64_t unix_millis() noexcept
{
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000;
}

}  // namespace core
