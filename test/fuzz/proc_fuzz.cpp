// The /proc parsers on arbitrary text: no crash, and what they return is self-consistent.
#include "agent/proc.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    constexpr std::size_t max_cpus = 64;
    std::vector<agent::CpuTimes> cpus;
    agent::parse_stat_cpus(text, cpus, max_cpus);
    if (cpus.size() > max_cpus)
        std::abort();
    for (std::size_t i = 0; i + 1 < cpus.size(); ++i) {
        const double u = agent::cpu_utilization(cpus[i], cpus[i + 1]);
        if (!(u >= 0.0 && u <= 100.0))
            std::abort();
    }
    if (auto m = agent::parse_meminfo(text); !m && m.error() != core::Errc::bad_value)
        std::abort();
    if (auto s = agent::parse_status(text); !s && s.error() != core::Errc::bad_value)
        std::abort();
    if (auto s = agent::parse_stat(text); !s && s.error() != core::Errc::bad_value)
        std::abort();
    return 0;
}
