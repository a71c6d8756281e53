// Resident memory per stored metric: inserts N distinct metrics (default 1 million, half gauges,
// half counters) into MemoryMap and reads VmRSS before and after. Names are made on the fly
// so that only the store's own memory grows; their bytes are subtracted to get the overhead
// per metric (target: at most 96 bytes).
//
//   storage_footprint [COUNT] [NAME_BYTES]     (defaults: 1000000, 24)
#include "core/clock.hpp"
#include "storage/memory_map.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace {

long vm_rss_kib()
{
    std::ifstream status{"/proc/self/status"};
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

}  // namespace

int main(int argc, char** argv)
{
    const std::size_t count = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
    const std::size_t name_bytes = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 24;
    if (count == 0 || name_bytes < 12 || name_bytes > core::max_name_bytes) {
        std::fprintf(stderr, "usage: storage_footprint [COUNT>0] [NAME_BYTES 12..255]\n");
        return 2;
    }
    storage::MemoryMap store;
    const storage::Stamp stamp{0, core::unix_millis()};  // what the memory-only daemon stores
    // Warm up the allocator and the store's fixed parts before the first reading.
    if (!store.update(core::Metric::gauge("warm-up", 1), stamp))
        return 1;
    const long before = vm_rss_kib();

    std::string name(name_bytes, 'x');
    std::size_t total_name_bytes = 0;
    for (std::size_t i = 0; i < count; ++i) {
        // "m<i>" left-padded with x: distinct names of exactly name_bytes.
        const std::string digits = std::to_string(i);
        name.replace(name_bytes - digits.size() - 1, digits.size() + 1, "m" + digits);
        const auto m = i % 2 == 0 ? core::Metric::gauge(name, 0.5 * static_cast<double>(i))
                                  : core::Metric::counter(name, static_cast<std::int64_t>(i));
        if (!store.update(m, stamp)) {
            std::fprintf(stderr, "storage_footprint: insert %zu failed\n", i);
            return 1;
        }
        total_name_bytes += name.size();
    }
    const long after = vm_rss_kib();
    // Checked after the reading: a listing of a million metrics allocates plenty itself.
    if (store.list().size() != count + 1) {
        std::fprintf(stderr, "storage_footprint: the store does not hold %zu metrics\n", count);
        return 1;
    }

    const double grown = static_cast<double>(after - before) * 1024.0;
    const double per_metric = grown / static_cast<double>(count);
    const double beyond = (grown - static_cast<double>(total_name_bytes)) / static_cast<double>(count);
    std::printf("%zu metrics (names %zu bytes): VmRSS %ld KiB -> %ld KiB; %.1f bytes per metric, "
                "%.1f beyond the name bytes (target <= 96)\n",
                count, name_bytes, before, after, per_metric, beyond);
    return 0;
}
