// parse_gauge / parse_counter on arbitrary text: no crash, and whatever is accepted prints
// and parses back to the same value (bit-exact for gauges). The gauge formatters print exactly
// what std::to_chars prints, for every accepted gauge and for the double whose bits are the
// first 8 input bytes.
#include "core/number.hpp"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void check_matches_to_chars(double v)
{
    char want[core::max_number_chars];
    char got[core::max_number_chars];
    auto same = [&](const char* want_end, const char* got_end) {
        return want_end - want == got_end - got && std::memcmp(want, got, static_cast<std::size_t>(got_end - got)) == 0;
    };
    if (!same(std::to_chars(want, want + sizeof want, v, std::chars_format::fixed).ptr, core::format_gauge(got, v)))
        std::abort();
    if (!same(std::to_chars(want, want + sizeof want, v).ptr, core::format_json_double(got, v)))
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view s{reinterpret_cast<const char*>(data), size};
    char buf[core::max_number_chars];
    if (auto g = core::parse_gauge(s)) {
        if (!std::isfinite(*g))
            std::abort();
        check_matches_to_chars(*g);
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
    if (size >= sizeof(double)) {
        double v = 0;
        std::memcpy(&v, data, sizeof v);
        if (std::isfinite(v))
            check_matches_to_chars(v);
        // The same bits as a counter: format_counter prints what std::to_chars prints.
        std::int64_t i = 0;
        std::memcpy(&i, data, sizeof i);
        char want[32];
        const char* want_end = std::to_chars(want, want + sizeof want, i).ptr;
        const char* got_end = core::format_counter(buf, i);
        if (got_end - buf != want_end - want || std::memcmp(buf, want, static_cast<std::size_t>(want_end - want)) != 0)
            std::abort();
    }
    return 0;
}
