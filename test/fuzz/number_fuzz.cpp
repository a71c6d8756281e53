// parse_gauge / parse_counter on arbitrary text: no crash, and whatever is accepted prints
// and parses back to the same value (bit-exact for gauges).
#include "core/number.hpp"

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view s{reinterpret_cast<const char*>(data), size};
    char buf[core::max_number_chars];
    if (auto g = core::parse_gauge(s)) {
        if (!std::isfinite(*g))
            std::abort();
        for (auto format : {core::format_gauge, core::format_json_double}) {
            char* end = format(buf, *g);
            auto again = core::parse_gauge({buf, static_cast<std::size_t>(end - buf)});
            if (!again || std::bit_cast<std::uint64_t>(*again) != std::bit_cast<std::uint64_t>(*g))
                std::abort();
        }
    } else if (g.error() != core::Errc::bad_value && g.error() != core::Errc::non_finite) {
        std::abort();
    }
    if (auto c = core::parse_counter(s)) {
        char* end = core::format_counter(buf, *c);
        auto again = core::parse_counter({buf, static_cast<std::size_t>(end - buf)});
        if (!again || *again != *c)
            std::abort();
        // Any accepted counter is also a valid gauge text.
        if (!core::parse_gauge(s))
            std::abort();
    } else if (c.error() != core::Errc::bad_value) {
        std::abort();
    }
    return 0;
}
