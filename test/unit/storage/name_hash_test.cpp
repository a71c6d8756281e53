#include "storage/detail/name_hash.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

using storage::detail::name_hash;

namespace {

/// Names of every length from 0 to 40, and the shapes agents send ("metric_123").
std::vector<std::string> sample_names()
{
    std::vector<std::string> names;
    for (int i = 0; i < 20000; ++i)
        names.push_back("metric_" + std::to_string(i));
    for (std::size_t n = 0; n <= 40; ++n)
        for (char c : {'a', 'b'})
            names.push_back(std::string(n, 'x') + c);
    return names;
}

}  // namespace

TEST_CASE("name_hash depends on every byte, the size and the seed, and reads only the name")
{
    const std::uint64_t seed = 0x1234'5678'9abc'def0ULL;
    // A name inside a larger buffer hashes as the name alone.
    const std::string buffer = "XXXXmemory_usage_totalYYYY";
    CHECK(name_hash(std::string_view{buffer}.substr(4, 18), seed) == name_hash("memory_usage_total", seed));
    CHECK(name_hash("", seed) != name_hash("", seed + 1));
    CHECK(name_hash("Alloc", seed) != name_hash("Alloc", seed + 1));
    // Every single-bit change of a name of each size class changes the hash.
    for (std::size_t n : {1u, 2u, 3u, 4u, 7u, 8u, 9u, 15u, 16u, 17u, 31u, 33u, 40u}) {
        const std::string name(n, 'm');
        const std::uint64_t h = name_hash(name, seed);
        for (std::size_t i = 0; i < n; ++i)
            for (int bit = 0; bit < 8; ++bit) {
                std::string flipped = name;
                flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
                CHECK_MESSAGE(name_hash(flipped, seed) != h, "size ", n, " byte ", i, " bit ", bit);
            }
        // A trailing NUL is not the same name.
        CHECK(name_hash(name + '\0', seed) != h);
    }
}

TEST_CASE("name_hash spreads names over shards (low bits) and table homes (high bits)")
{
    const auto names = sample_names();
    std::set<std::uint64_t> distinct;
    std::array<int, 64> low{};
    std::array<int, 64> high{};
    for (const auto& name : names) {
        const std::uint64_t h = name_hash(name, 42);
        distinct.insert(h);
        ++low[h & 63];
        ++high[h >> 58];
    }
    CHECK(distinct.size() == names.size());
    // 20082 names over 64 buckets: about 314 each; a fair hash stays well within +-25 %.
    const double mean = static_cast<double>(names.size()) / 64;
    for (std::size_t b = 0; b < 64; ++b) {
        CHECK_MESSAGE(low[b] > 0.75 * mean, "low bucket ", b, ": ", low[b]);
        CHECK_MESSAGE(low[b] < 1.25 * mean, "low bucket ", b, ": ", low[b]);
        CHECK_MESSAGE(high[b] > 0.75 * mean, "high bucket ", b, ": ", high[b]);
        CHECK_MESSAGE(high[b] < 1.25 * mean, "high bucket ", b, ": ", high[b]);
    }
}
