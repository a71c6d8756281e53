#pragma once

// Collectors: each reads one source and writes gauges into the MetricTable. The sans-I/O part of
// each (`write_*`, `update`) takes parsed readings or file contents, so tests use fixtures;
// `collect` does the reading. docs/AGENT_METRICS.md lists every name with source and unit.

#include "agent/alloc_counter.hpp"
#include "agent/proc.hpp"
#include "agent/table.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace agent {

/// glibc's allocator statistics (mallinfo2), summed over all arenas, in bytes.
struct MallocStats {
    std::uint64_t arena = 0;     ///< bytes obtained with sbrk/mmap for arenas
    std::uint64_t mmapped = 0;   ///< hblkhd: bytes in chunks mmapped on their own (large blocks)
    std::uint64_t in_use = 0;    ///< uordblks: bytes in allocated chunks inside arenas
    std::uint64_t free = 0;      ///< fordblks: bytes in free chunks inside arenas
    std::uint64_t releasable = 0;  ///< keepcost: free bytes at the top that trimming would return
    friend bool operator==(const MallocStats&, const MallocStats&) = default;
};
MallocStats malloc_stats() noexcept;

/// Everything the process gauges are computed from, read at one poll.
struct ProcessReadings {
    ProcStatus status;
    ProcStat stat;
    MallocStats malloc;
    AllocCounts allocs;
    std::uint64_t open_fds = 0;
};
/// System constants the readings are scaled by (sysconf).
struct ProcessUnits {
    std::uint64_t page_bytes = 4096;
    std::uint64_t ticks_per_second = 100;
};

/// Writes the Go runtime.MemStats-compatible gauges and the Process* gauges.
void write_process_metrics(const ProcessReadings& r, const ProcessUnits& units, MetricTable& table);

/// This process: /proc/self/{status,stat,fd}, mallinfo2 and the counting allocator.
class ProcessCollector {
public:
    /// `proc_self` is the /proc/self directory (a fixture directory in tests).
    explicit ProcessCollector(std::string proc_self = "/proc/self");
    /// Unreadable or malformed files: io_error / bad_value, and the table is left unchanged.
    core::Result<void> collect(MetricTable& table);

private:
    std::string status_path_;
    std::string stat_path_;
    std::string fd_path_;
    std::string buffer_;  // reused for each file
    ProcessUnits units_;
};

/// The machine: TotalMemory and FreeMemory from /proc/meminfo, CPUutilization1..N from the
/// change of /proc/stat between consecutive polls. The first poll compares against boot (all
/// counters zero), so it reports the average utilisation since boot rather than nothing.
class SystemCollector {
public:
    /// `proc` is the /proc directory (a fixture directory in tests).
    explicit SystemCollector(std::string proc = "/proc");
    core::Result<void> collect(MetricTable& table);
    /// The sans-I/O step: file contents in, gauges out. A malformed meminfo is bad_value, but
    /// the CPU gauges are still written.
    core::Result<void> update(std::string_view stat, std::string_view meminfo, MetricTable& table);

private:
    const std::string& cpu_name(std::size_t index);

    std::string stat_path_;
    std::string meminfo_path_;
    std::string stat_text_;
    std::string meminfo_text_;
    std::vector<CpuTimes> previous_;
    std::vector<CpuTimes> current_;
    std::vector<std::string> cpu_names_;  // "CPUutilization<N+1>", built once per CPU
};

/// RandomValue: a uniform number in [0, 1), like the Go agent's rand.Float64().
class RandomCollector {
public:
    RandomCollector();
    explicit RandomCollector(std::uint64_t seed) : rng_(seed) {}
    void collect(MetricTable& table);

private:
    std::mt19937_64 rng_;
};

}  // namespace agent
