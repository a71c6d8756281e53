#pragma once

#include <cstdint>
#include <ctime>

namespace core {

/// The wall clock in Unix milliseconds. A plain function pointer so that tests can pass one that
/// reads a variable they set (a manual clock), and the hot path pays no virtual call.
using Clock = std::int64_t (*)() noexcept;

/// The wall clock in Unix milliseconds, as of the last timer tick (CLOCK_REALTIME_COARSE: at most
/// a few milliseconds old, clock_getres says how many). Every update reads it, and the coarse
/// clock costs a fraction of CLOCK_REALTIME (BM_UpdateGauge<MemoryMap> in bench/storage_bench.cpp).
inline std::int64_t unix_millis() noexcept
{
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000;
}

}  // namespace core
