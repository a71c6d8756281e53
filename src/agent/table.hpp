#pragma once

#include "core/metric.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agent {

/// One report as it travels from the table through the queue to a sender: the JSON array body
/// and the counter deltas it carries, which go back into the table if it is never delivered.
struct Batch {
    std::uint64_t sequence = 0;
    std::string body;
    std::vector<std::pair<std::string, std::int64_t>> counters;
};

/// The latest value of every metric: collectors write, reports read. Gauges overwrite; counters
/// accumulate a pending delta that a report takes and an undelivered report gives back, so the
/// server's total ends equal to what was counted here (for PollCount: the true poll count).
/// Not thread-safe: the agent runs it on one thread.
class MetricTable {
public:
    void set_gauge(std::string_view name, double value);
    void add_counter(std::string_view name, std::int64_t delta);

    /// The current value of a gauge or the pending delta of a counter (tests, logs).
    const double* gauge(std::string_view name) const;
    std::int64_t counter(std::string_view name) const;
    bool empty() const noexcept { return gauges_.empty() && counters_.empty(); }

    /// Serialises every metric, sorted by name, gauges first, into one JSON array (through a
    /// reused buffer) and takes the pending counter deltas (they are reported, including 0).
    Batch take_batch();
    /// Adds the counter deltas of a batch that was dropped or given up on back to the pending ones.
    void give_back(const Batch& batch);

private:
    std::map<std::string, double, std::less<>> gauges_;
    std::map<std::string, std::int64_t, std::less<>> counters_;
    fmt::memory_buffer json_;
    std::vector<core::Metric> views_;
    std::uint64_t next_sequence_ = 1;
};

}  // namespace agent
