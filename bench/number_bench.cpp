// Gauge formatting on the answer path: core::format_gauge / format_json_double against the
// std::to_chars calls they replace (same output, checked before timing).
#include "core/number.hpp"
#include "support/allocations.hpp"
#include "support/check.hpp"

#include <benchmark/benchmark.h>

#include <array>
#include <charconv>
#include <cstddef>
#include <string_view>

namespace {

// Typical metric values (short decimals, integers, small fractions) and one that is not (1/3:
// 16 digits, the Dragonbox path).
constexpr std::array<double, 7> values = {123456.789, 3.25, 1234.0, 0.001, 1e-7, 98.6, 1.0 / 3};

char* to_chars_gauge(char* first, double v)
{
    return std::to_chars(first, first + core::max_number_chars, v, std::chars_format::fixed).ptr;
}

char* to_chars_json(char* first, double v)
{
    return std::to_chars(first, first + core::max_number_chars, v).ptr;
}

template <char* (*Format)(char*, double), char* (*Reference)(char*, double)>
void bm_format(benchmark::State& state)
{
    std::array<char, core::max_number_chars> buf{};
    std::array<char, core::max_number_chars> want{};
    for (double v : values) {
        const std::string_view got{buf.data(), static_cast<std::size_t>(Format(buf.data(), v) - buf.data())};
        const std::string_view expected{want.data(), static_cast<std::size_t>(Reference(want.data(), v) - want.data())};
        bench::require(got == expected, "bm_format", "the output equals std::to_chars'");
    }
    std::size_t i = 0;
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        double v = values[i++ % values.size()];
        benchmark::DoNotOptimize(v);
        benchmark::DoNotOptimize(Format(buf.data(), v));
        benchmark::ClobberMemory();
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}

BENCHMARK_TEMPLATE(bm_format, to_chars_gauge, to_chars_gauge)->Name("BM_GaugeToChars");
BENCHMARK_TEMPLATE(bm_format, core::format_gauge, to_chars_gauge)->Name("BM_FormatGauge");
BENCHMARK_TEMPLATE(bm_format, to_chars_json, to_chars_json)->Name("BM_JsonDoubleToChars");
BENCHMARK_TEMPLATE(bm_format, core::format_json_double, to_chars_json)->Name("BM_FormatJsonDouble");

}  // namespace

BENCHMARK_MAIN();
