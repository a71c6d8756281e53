#pragma once

// The counting machinery behind allocations.hpp, shared by the operator new replacement
// (counting_new.cpp) and the aligned C allocators (counting_aligned.cpp).

#include "support/allocations.hpp"

#include <cstddef>

namespace bench::detail {

/// Records one allocation of `size` bytes for the calling thread. Async-signal-unsafe but
/// allocation-free: callable from inside an allocator.
void count_allocation(std::size_t size) noexcept;

/// What count_allocation has recorded: this thread's, or every thread's.
Allocations counted_thread() noexcept;
Allocations counted_process() noexcept;

/// The aligned_alloc that counting_aligned.cpp interposes (glibc's, or a preloaded profiler's
/// such as heaptrack's), uncounted.
void* next_aligned_alloc(std::size_t alignment, std::size_t size) noexcept;

}  // namespace bench::detail
