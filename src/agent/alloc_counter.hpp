#pragma once

// The agent's own allocation counters: the agent replaces the global operator new and delete
// (alloc_counter.cpp) with versions that count before calling malloc and free. They feed the
// Go-compatible Mallocs, Frees, HeapObjects and TotalAlloc metrics. Only C++ allocations are
// counted; malloc calls made by C libraries (libdeflate, getaddrinfo) are not.

#include <cstdint>

namespace agent {

struct AllocCounts {
    std::uint64_t allocations = 0;  ///< operator new calls since start
    std::uint64_t frees = 0;        ///< operator delete calls on non-null pointers
    std::uint64_t bytes = 0;        ///< bytes requested from operator new since start
    friend bool operator==(const AllocCounts&, const AllocCounts&) = default;
};

/// A snapshot of the counters (relaxed: each is exact, together they are not one instant).
AllocCounts alloc_counts() noexcept;

}  // namespace agent
