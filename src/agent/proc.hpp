#pragma once

// Sans-I/O parsers for the /proc files the collectors read. Each takes the file's contents, so
// tests feed fixtures; reading the real files is `read_proc_file`'s job. Malformed input gives
// Errc::bad_value (or skips the malformed line where a file is a list), never a crash.

#include "core/result.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agent {

/// /proc/meminfo, in bytes. `available` is MemAvailable (0 when the kernel predates 3.14).
struct MemInfo {
    std::uint64_t total = 0;
    std::uint64_t free = 0;
    std::uint64_t available = 0;
    friend bool operator==(const MemInfo&, const MemInfo&) = default;
};
/// MemTotal and MemFree are required; MemAvailable is optional.
core::Result<MemInfo> parse_meminfo(std::string_view text);

/// One `cpuN` line of /proc/stat, in clock ticks since boot.
struct CpuTimes {
    std::uint64_t busy = 0;  ///< user + nice + system + irq + softirq + steal
    std::uint64_t idle = 0;  ///< idle + iowait
    friend bool operator==(const CpuTimes&, const CpuTimes&) = default;
};
/// The per-CPU lines of /proc/stat (not the aggregate `cpu` line), indexed by N in `cpuN`: a CPU
/// that is offline leaves a zero entry. Clears `out` first. At most `max_cpus` entries; lines
/// beyond it and malformed lines are ignored.
void parse_stat_cpus(std::string_view text, std::vector<CpuTimes>& out, std::size_t max_cpus = 4096);

/// Percent of `now - before` spent busy, 0..100; 0 when no tick elapsed or the counters went
/// backwards (a CPU that went offline and came back).
double cpu_utilization(const CpuTimes& before, const CpuTimes& now) noexcept;

/// The fields of /proc/self/status the process collector uses, in bytes (the file says kB).
struct ProcStatus {
    std::uint64_t vm_size = 0;
    std::uint64_t vm_rss = 0;
    std::uint64_t vm_data = 0;
    std::uint64_t vm_stack = 0;
    std::uint64_t vm_exe = 0;
    std::uint64_t vm_lib = 0;
    friend bool operator==(const ProcStatus&, const ProcStatus&) = default;
};
/// VmRSS is required (kernel threads have none); missing others stay 0.
core::Result<ProcStatus> parse_status(std::string_view text);

/// The fields of /proc/self/stat the process collector uses (units as the kernel gives them).
struct ProcStat {
    std::uint64_t minor_faults = 0;
    std::uint64_t major_faults = 0;
    std::uint64_t user_ticks = 0;
    std::uint64_t system_ticks = 0;
    std::uint64_t threads = 0;
    std::uint64_t virtual_bytes = 0;
    std::uint64_t resident_pages = 0;
    friend bool operator==(const ProcStat&, const ProcStat&) = default;
};
/// The command name may hold spaces and parentheses: fields are counted after the last ')'.
core::Result<ProcStat> parse_stat(std::string_view text);

/// Largest /proc file read; /proc/stat on a big machine is tens of kB.
constexpr std::size_t max_proc_file_bytes = 1 << 20;

/// Replaces `out` with the contents of `path` (at most `max_proc_file_bytes`; the rest is not
/// read). `out` keeps its capacity between calls. Unreadable: Errc::io_error.
core::Result<void> read_proc_file(const char* path, std::string& out);

/// Entries of a directory other than `.` and `..` (for /proc/self/fd); unreadable: io_error.
core::Result<std::size_t> count_directory_entries(const char* path);

}  // namespace agent
