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

// Every non-aligned form, so that each pointer is freed by the family that allocated it (the
// aligned forms stay the library's, a matched pair of their own).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept
{
    ++allocations;
    return std::malloc(n == 0 ? 1 : n);
}
void* operator new(std::size_t n)
{
    if (void* p = operator new(n, std::nothrow))
        return p;
    throw std::bad_alloc{};
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return operator new(n, std::nothrow); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
