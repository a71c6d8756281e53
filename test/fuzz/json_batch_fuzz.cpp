// parse_batch on arbitrary bytes: no crash, bounded, and any accepted batch writes back to JSON
// that parses to an equal batch.
#include "core/json.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    constexpr std::size_t max_items = 64;
    static core::JsonCodec codec;
    static std::vector<core::Metric> batch;
    const std::string_view s{reinterpret_cast<const char*>(data), size};
    if (!codec.parse_batch(s, batch, max_items))
        return 0;
    if (batch.empty() || batch.size() > max_items)
        std::abort();
    std::vector<core::OwnedMetric> first;
    for (const core::Metric& m : batch) {
        if (!core::validate(m))
            std::abort();
        first.push_back({std::string{m.id}, m.kind, m.value, m.delta});
    }
    fmt::memory_buffer out;
    core::write_json(out, std::span<const core::OwnedMetric>{first});
    if (!codec.parse_batch({out.data(), out.size()}, batch, max_items) || batch.size() != first.size())
        std::abort();
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const core::Metric& m = batch[i];
        if (m.id != first[i].id || m.kind != first[i].kind || m.delta != first[i].delta ||
            std::bit_cast<std::uint64_t>(m.value) != std::bit_cast<std::uint64_t>(first[i].value))
            std::abort();
    }
    return 0;
}
