// The allocs/iter and bytes/iter user counters, from whichever counter the binary links.
#include "support/allocations.hpp"

namespace bench {

namespace {

void set_counters(benchmark::State& state, Allocations now, Allocations since)
{
    state.counters["allocs/iter"] =
        benchmark::Counter(static_cast<double>(now.count - since.count), benchmark::Counter::kAvgIterations);
    state.counters["bytes/iter"] =
        benchmark::Counter(static_cast<double>(now.bytes - since.bytes), benchmark::Counter::kAvgIterations);
}

}  // namespace

void report_thread_allocations(benchmark::State& state, Allocations since)
{
    set_counters(state, thread_allocations(), since);
}

void report_process_allocations(benchmark::State& state, Allocations since)
{
    set_counters(state, process_allocations(), since);
}

}  // namespace bench

