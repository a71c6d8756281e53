#include "agent/collectors.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>

namespace agent {
namespace {

double as_gauge(std::uint64_t v) noexcept { return static_cast<double>(v); }

std::uint64_t sysconf_or(int name, std::uint64_t fallback) noexcept
{
    const long v = ::sysconf(name);
    return v > 0 ? static_cast<std::uint64_t>(v) : fallback;
}

}  // namespace

MallocStats malloc_stats() noexcept
{
    const struct mallinfo2 mi = ::mallinfo2();
    return {mi.arena, mi.hblkhd, mi.uordblks, mi.fordblks, mi.keepcost};
}

void write_process_metrics(const ProcessReadings& r, const ProcessUnits& units, MetricTable& t)
{
    const MallocStats& m = r.malloc;
    const std::uint64_t heap_sys = m.arena + m.mmapped;
    const std::uint64_t heap_in_use = m.in_use + m.mmapped;
    const std::uint64_t stack = r.status.vm_stack;
    // Anonymous memory that is not malloc's: data, bss, thread stacks, other private mappings.
    const std::uint64_t other = r.status.vm_data > heap_sys ? r.status.vm_data - heap_sys : 0;
    const std::uint64_t objects = r.allocs.allocations >= r.allocs.frees ? r.allocs.allocations - r.allocs.frees : 0;

    // Go runtime.MemStats names, each documented in docs/AGENT_METRICS.md.
    t.set_gauge("Alloc", as_gauge(heap_in_use));
    t.set_gauge("HeapAlloc", as_gauge(heap_in_use));
    t.set_gauge("HeapInuse", as_gauge(heap_in_use));
    t.set_gauge("HeapIdle", as_gauge(m.free));
    t.set_gauge("HeapSys", as_gauge(heap_sys));
    t.set_gauge("HeapReleased", 0);
    t.set_gauge("HeapObjects", as_gauge(objects));
    t.set_gauge("Mallocs", as_gauge(r.allocs.allocations));
    t.set_gauge("Frees", as_gauge(r.allocs.frees));
    t.set_gauge("TotalAlloc", as_gauge(r.allocs.bytes));
    t.set_gauge("StackInuse", as_gauge(stack));
    t.set_gauge("StackSys", as_gauge(stack));
    t.set_gauge("OtherSys", as_gauge(other));
    t.set_gauge("Sys", as_gauge(heap_sys + stack + other));
    // Go runtime internals with no counterpart in a C++ process: no garbage collector, no span
    // or mcache structures, no profiling bucket table, no pointer lookups.
    for (const char* name : {"GCSys", "GCCPUFraction", "LastGC", "NextGC", "NumGC", "NumForcedGC", "PauseTotalNs",
                             "BuckHashSys", "Lookups", "MCacheInuse", "MCacheSys", "MSpanInuse", "MSpanSys"})
        t.set_gauge(name, 0);

    t.set_gauge("ProcessResidentBytes", as_gauge(r.status.vm_rss));
    t.set_gauge("ProcessVirtualBytes", as_gauge(r.stat.virtual_bytes));
    t.set_gauge("ProcessCPUSeconds", static_cast<double>(r.stat.user_ticks + r.stat.system_ticks) /
                                         static_cast<double>(units.ticks_per_second));
    t.set_gauge("ProcessThreads", as_gauge(r.stat.threads));
    t.set_gauge("ProcessOpenFDs", as_gauge(r.open_fds));
    t.set_gauge("ProcessMinorFaults", as_gauge(r.stat.minor_faults));
    t.set_gauge("ProcessMajorFaults", as_gauge(r.stat.major_faults));
}

ProcessCollector::ProcessCollector(std::string proc_self)
    : status_path_(proc_self + "/status"),
      stat_path_(proc_self + "/stat"),
      fd_path_(proc_self + "/fd"),
      units_{sysconf_or(_SC_PAGESIZE, 4096), sysconf_or(_SC_CLK_TCK, 100)}
{
}

core::Result<void> ProcessCollector::collect(MetricTable& table)
{
    ProcessReadings r;
    if (auto read = read_proc_file(status_path_.c_str(), buffer_); !read)
        return read.error();
    auto status = parse_status(buffer_);
    if (!status)
        return status.error();
    r.status = *status;
    if (auto read = read_proc_file(stat_path_.c_str(), buffer_); !read)
        return read.error();
    auto stat = parse_stat(buffer_);
    if (!stat)
        return stat.error();
    r.stat = *stat;
    auto fds = count_directory_entries(fd_path_.c_str());
    if (!fds)
        return fds.error();
    // The directory stream being read holds a descriptor of its own.
    r.open_fds = *fds > 0 ? *fds - 1 : 0;
    r.malloc = malloc_stats();
    r.allocs = alloc_counts();
    write_process_metrics(r, units_, table);
    return {};
}

SystemCollector::SystemCollector(std::string proc) : stat_path_(proc + "/stat"), meminfo_path_(proc + "/meminfo") {}

core::Result<void> SystemCollector::collect(MetricTable& table)
{
    if (auto read = read_proc_file(stat_path_.c_str(), stat_text_); !read)
        return read.error();
    if (auto read = read_proc_file(meminfo_path_.c_str(), meminfo_text_); !read)
        return read.error();
    return update(stat_text_, meminfo_text_, table);
}

const std::string& SystemCollector::cpu_name(std::size_t index)
{
    while (cpu_names_.size() <= index)
        cpu_names_.push_back("CPUutilization" + std::to_string(cpu_names_.size() + 1));
    return cpu_names_[index];
}

core::Result<void> SystemCollector::update(std::string_view stat, std::string_view meminfo, MetricTable& table)
{
    parse_stat_cpus(stat, current_);
    for (std::size_t i = 0; i < current_.size(); ++i) {
        const CpuTimes before = i < previous_.size() ? previous_[i] : CpuTimes{};
        table.set_gauge(cpu_name(i), cpu_utilization(before, current_[i]));
    }
    std::swap(previous_, current_);

    auto mem = parse_meminfo(meminfo);
    if (!mem)
        return mem.error();
    table.set_gauge("TotalMemory", static_cast<double>(mem->total));
    // MemAvailable (what can be allocated without swapping) when the kernel has it.
    table.set_gauge("FreeMemory", static_cast<double>(mem->available != 0 ? mem->available : mem->free));
    return {};
}

RandomCollector::RandomCollector() : rng_(std::random_device{}()) {}

void RandomCollector::collect(MetricTable& table)
{
    table.set_gauge("RandomValue", std::uniform_real_distribution<double>{0.0, 1.0}(rng_));
}

}  // namespace agent
