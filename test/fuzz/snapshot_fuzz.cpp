// Snapshot file bodies (our array, or the Go server's object): never a crash; a rejected body is
// corrupt_snapshot; an accepted one holds only valid metrics, and writing it out and loading it
// again gives the same metrics, bit-exact, update times and sequence numbers included.
#include "core/json.hpp"
#include "storage/memory_map.hpp"
#include "storage/snapshot.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

bool same(const core::OwnedMetric& a, const core::OwnedMetric& b)
{
    return a.id == b.id && a.kind == b.kind && a.delta == b.delta && a.updated_at == b.updated_at && a.seq == b.seq &&
           std::bit_cast<std::uint64_t>(a.value) == std::bit_cast<std::uint64_t>(b.value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view body{reinterpret_cast<const char*>(data), size};
    auto loaded = storage::parse_snapshot(body);
    if (!loaded) {
        if (loaded.error() != core::Errc::corrupt_snapshot)
            std::abort();
        return 0;
    }
    for (const auto& m : *loaded)
        if (!core::validate(m.view()))
            std::abort();

    fmt::memory_buffer out;
    storage::write_snapshot_json(out, *loaded);
    auto again = storage::parse_snapshot({out.data(), out.size()});
    if (!again || again->size() != loaded->size())
        std::abort();
    for (std::size_t i = 0; i < loaded->size(); ++i)
        if (!same((*loaded)[i], (*again)[i]))
            std::abort();

    // Restored into memory, a repeated (id, kind) keeps its last value; the listing is sorted.
    storage::MemoryMap memory{storage::MapOptions{storage::Shards{4}}};
    memory.restore(*loaded);
    const auto listed = memory.list();
    if (listed.size() > loaded->size())
        std::abort();
    for (std::size_t i = 1; i < listed.size(); ++i)
        if (!(listed[i - 1].id < listed[i].id || (listed[i - 1].id == listed[i].id && listed[i - 1].kind < listed[i].kind)))
            std::abort();
    for (const auto& m : *loaded) {
        auto last = std::find_if(loaded->rbegin(), loaded->rend(),
                                 [&](const core::OwnedMetric& x) { return x.id == m.id && x.kind == m.kind; });
        auto stored = memory.get(m.kind, m.id);
        if (!stored || !same(core::OwnedMetric{m.id, m.kind, stored->value, stored->delta, last->updated_at, last->seq}, *last))
            std::abort();
    }
    return 0;
}
