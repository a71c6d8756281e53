#pragma once

// Inputs for the agent benchmarks: a metric table shaped like the agent's at report time.

#include "agent/table.hpp"

#include <string>
#include <vector>

namespace bench {

/// The Go agent's runtime gauge names plus a few system ones: what one report carries.
inline const std::vector<std::string>& agent_gauge_names()
{
    static const std::vector<std::string> names = {
        "Alloc", "BuckHashSys", "Frees", "GCCPUFraction", "GCSys", "HeapAlloc", "HeapIdle", "HeapInuse",
        "HeapObjects", "HeapReleased", "HeapSys", "LastGC", "Lookups", "MCacheInuse", "MCacheSys", "MSpanInuse",
        "MSpanSys", "Mallocs", "NextGC", "NumForcedGC", "NumGC", "OtherSys", "PauseTotalNs", "StackInuse",
        "StackSys", "Sys", "TotalAlloc", "RandomValue", "TotalMemory", "FreeMemory", "CPUutilization1",
        "CPUutilization2"};
    return names;
}

/// A table after one poll: every gauge of a report with a realistic value, and PollCount.
inline agent::MetricTable agent_table()
{
    agent::MetricTable table;
    double v = 1234567.891;
    for (const auto& name : agent_gauge_names()) {
        table.set_gauge(name, v);
        v = v * 1.37 + 0.5;
    }
    table.add_counter("PollCount", 5);
    return table;
}

}  // namespace bench
