#pragma once

#include <cstddef>

namespace test {

/// Heap allocations made by the calling thread so far (counting_new.cpp replaces the global
/// operator new of the whole unit_storage binary).
std::size_t thread_allocations() noexcept;

}  // namespace test
