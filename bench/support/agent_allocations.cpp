// Agent benchmarks link the agent library, which already replaces operator new and delete to
// feed its Go-compatible Mallocs/TotalAlloc metrics (agent/alloc_counter.cpp); a second
// replacement would not link. Its counters are process-wide, so "this thread" is the process
// here: agent benchmarks are single-threaded or report process allocations anyway. The aligned
// C allocations (simdjson's buffers) come from counting_aligned.cpp; an over-aligned operator
// new, which the agent serves with aligned_alloc, counts twice (none on these paths).
#include "support/detail/counters.hpp"

#include "agent/alloc_counter.hpp"

namespace bench {

Allocations process_allocations() noexcept
{
    const auto c = agent::alloc_counts();
    const auto aligned = detail::counted_process();
    return {c.allocations + aligned.count, c.bytes + aligned.bytes};
}

Allocations thread_allocations() noexcept
{
    return process_allocations();
}

}  // namespace bench
