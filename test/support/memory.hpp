#pragma once

#include "storage/memory.hpp"

#include <cstdint>
#include <string_view>

namespace test {

/// A gauge's value in `map`, or 0 when absent.
inline double gauge(const storage::MemoryMap& map, std::string_view id)
{
    const auto m = map.get(core::Kind::gauge, id);
    return m ? m->value : 0;
}

/// A counter's total in `map`, or 0 when absent.
inline std::int64_t counter(const storage::MemoryMap& map, std::string_view id)
{
    const auto m = map.get(core::Kind::counter, id);
    return m ? m->delta : 0;
}

}  // namespace test
