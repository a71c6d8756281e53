// Replaces the global allocation functions with counting ones (malloc underneath), so that the
// zero-allocation claims of the storage are checked, not assumed. A separate translation unit:
// inlined into callers, GCC would pair these with their new-expressions and warn.
#include "counting_new.hpp"

#include <cstdlib>
#include <new>

namespace {
thread_local std::size_t allocations = 0;
}  // namespace

std::size_t test::thread_allocations() noexcept
{
    return allocations;
}

void* operator new(std::size_t n)
{
    ++allocations;
    if (void* p = std::malloc(n == 0 ? 1 : n))
        return p;
    throw std::bad_alloc{};
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
