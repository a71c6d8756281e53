// parse_proc_stat (/proc/self/stat for the process_* self-metrics) on arbitrary text: no crash,
// and what parses gives figures that are not negative.
#include "server/self_metrics.hpp"
#include "support/fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    if (auto p = server::parse_proc_stat(text, 100, 4096, 1.7e9)) {
        FUZZ_CHECK(p->cpu_seconds >= 0);
        FUZZ_CHECK(p->resident_bytes >= 0 && p->virtual_bytes >= 0);
        FUZZ_CHECK(p->start_time_seconds >= 1.7e9);
    }
    return 0;
}
