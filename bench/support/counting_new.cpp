// Replaces the global operator new and delete with counting ones (malloc underneath). Linked
// whole into every bench binary except the agent's, whose library has its own replacement
// (agent/alloc_counter.cpp; see agent_allocations.cpp).
#include "support/detail/counters.hpp"

#include <cstdlib>
#include <new>

namespace bench {

namespace {

void* allocate(std::size_t size)
{
    detail::count_allocation(size);
    // malloc(0) may return null; operator new must return a unique pointer.
    for (;;) {
        if (void* p = std::malloc(size == 0 ? 1 : size))
            return p;
        std::new_handler handler = std::get_new_handler();
        if (handler == nullptr)
            throw std::bad_alloc{};
        handler();
    }
}

void* allocate_aligned(std::size_t size, std::align_val_t align)
{
    detail::count_allocation(size);
    const auto a = static_cast<std::size_t>(align);
    // aligned_alloc wants a size that is a multiple of the alignment. Not counted again there.
    const std::size_t rounded = size == 0 ? a : (size + a - 1) / a * a;
    if (void* p = detail::next_aligned_alloc(a, rounded))
        return p;
    throw std::bad_alloc{};
}

}  // namespace

Allocations thread_allocations() noexcept
{
    return detail::counted_thread();
}

Allocations process_allocations() noexcept
{
    return detail::counted_process();
}

}  // namespace bench

// The replaceable global allocation functions ([new.delete]); each counts one allocation.
void* operator new(std::size_t size) { return bench::allocate(size); }
void* operator new[](std::size_t size) { return bench::allocate(size); }
void* operator new(std::size_t size, std::align_val_t align) { return bench::allocate_aligned(size, align); }
void* operator new[](std::size_t size, std::align_val_t align) { return bench::allocate_aligned(size, align); }

void* operator new(std::size_t size, const std::nothrow_t&) noexcept
{
    try {
        return bench::allocate(size);
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return operator new(size, tag); }
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept
{
    try {
        return bench::allocate_aligned(size, align);
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t& tag) noexcept
{
    return operator new(size, align, tag);
}

void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
