// parse_batch on arbitrary bytes: no crash, bounded, the codec answers exactly as its simdjson
// path alone does (the same error, or the same metrics bit for bit), and any accepted batch
// writes back to JSON that parses to an equal batch.
#include "core/json.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

bool same(const core::Metric& a, const core::Metric& b)
{
    return a.id == b.id && a.kind == b.kind && a.delta == b.delta &&
           std::bit_cast<std::uint64_t>(a.value) == std::bit_cast<std::uint64_t>(b.value);
}

bool same_batch(const std::vector<core::Metric>& a, const std::vector<core::Metric>& b)
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!same(a[i], b[i]))
            return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    constexpr std::size_t max_items = 64;
    static core::JsonCodec codec;
    static core::JsonCodec simdjson_only{core::JsonCodec::Parsers::simdjson_only};
    static std::vector<core::Metric> batch;
    static std::vector<core::Metric> reference;
    const std::string_view s{reinterpret_cast<const char*>(data), size};
    const core::Result<void> r = codec.parse_batch(s, batch, max_items);
    const core::Result<void> expected = simdjson_only.parse_batch(s, reference, max_items);
    if (r.error() != expected.error() || (r && !same_batch(batch, reference)))
        std::abort();
    if (!r)
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
    for (std::size_t i = 0; i < batch.size(); ++i)
        if (!same(batch[i], first[i].view()))
            std::abort();
    return 0;
}
