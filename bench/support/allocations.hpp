#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

namespace bench {

/// Running totals of `operator new` calls and bytes requested: the C++ analogue of Go's
/// `-benchmem`. bench_support replaces the global operator new (counting_new.cpp) and interposes
/// the aligned C allocators that Asio uses for coroutine frames (counting_aligned.cpp): two
/// relaxed stores per allocation. Plain malloc from C libraries is not counted. Agent binaries
/// count operator new with the agent's own replacement (agent_allocations.cpp), where "this
/// thread" means the whole process.
struct Allocations {
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;
};

/// What the calling thread has allocated so far.
Allocations thread_allocations() noexcept;
/// What every thread of the process has allocated so far (threads that ended included).
Allocations process_allocations() noexcept;

/// Sets the user counters `allocs/iter` and `bytes/iter` from the calling thread's allocations
/// since `since`. Safe with ->Threads(n): Google Benchmark sums each thread's counter and
/// divides by the total iterations.
void report_thread_allocations(benchmark::State& state, Allocations since);

/// The same from the whole process's allocations: for single-threaded benchmarks whose work
/// happens on threads they start (worker pools).
void report_process_allocations(benchmark::State& state, Allocations since);

}  // namespace bench
