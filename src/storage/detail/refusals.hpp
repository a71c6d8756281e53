#pragma once

#include "core/log.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace storage::detail {

/// Counts updates refused at the metric cap (--max-metrics) and logs them at most once a second,
/// one line with how many since the last: a client that keeps creating names must not flood the
/// log. Thread-safe and lock-free.
class Refusals {
public:
    void note(std::size_t cap) noexcept
    {
        total_.fetch_add(1, std::memory_order_relaxed);
        unlogged_.fetch_add(1, std::memory_order_relaxed);
        const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count();
        std::int64_t last = last_log_.load(std::memory_order_relaxed);
        if (now - last < 1000 || !last_log_.compare_exchange_strong(last, now, std::memory_order_relaxed))
            return;
        const std::uint64_t n = unlogged_.exchange(0, std::memory_order_relaxed);
        try {
            core::log::warn("metric cap of {} reached (--max-metrics): refused {} update(s) that would add a metric",
                            cap, n);
        } catch (...) {  // out of memory formatting the line: the count still shows in /metrics
        }
    }

    /// Refusals since construction.
    std::uint64_t total() const noexcept { return total_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> total_{0};
    std::atomic<std::uint64_t> unlogged_{0};
    std::atomic<std::int64_t> last_log_{INT64_MIN / 2};  ///< steady-clock milliseconds of the last line
};

}  // namespace storage::detail
