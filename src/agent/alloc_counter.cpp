#include "agent/alloc_counter.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

// Replacing the global allocation functions is how standard C++ lets a program observe its own
// allocations. Every form is replaced, array, nothrow, sized and aligned alike: libstdc++'s own
// forms forward to the plain ones, but a sanitizer runtime brings its own, and a pointer from our
// operator new must never reach theirs. This file is pulled into every binary that reads
// `alloc_counts`; binaries that do not are unaffected.

namespace {

std::atomic<std::uint64_t> g_allocations{0};
std::atomic<std::uint64_t> g_frees{0};
std::atomic<std::uint64_t> g_bytes{0};

void count_allocation(std::size_t size) noexcept
{
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    g_bytes.fetch_add(size, std::memory_order_relaxed);
}

void release(void* p) noexcept
{
    if (p == nullptr)
        return;
    g_frees.fetch_add(1, std::memory_order_relaxed);
    std::free(p);
}

void* allocate(std::size_t size)
{
    // malloc(0) may return null; operator new must return a unique pointer.
    for (;;) {
        if (void* p = std::malloc(size == 0 ? 1 : size)) {
            count_allocation(size);
            return p;
        }
        std::new_handler handler = std::get_new_handler();
        if (handler == nullptr)
            throw std::bad_alloc{};
        handler();
    }
}

void* allocate_aligned(std::size_t size, std::align_val_t alignment)
{
    const auto align = static_cast<std::size_t>(alignment);
    // aligned_alloc wants a size that is a multiple of the alignment.
    const std::size_t rounded = size == 0 ? align : (size + align - 1) / align * align;
    if (rounded < size)
        throw std::bad_alloc{};
    for (;;) {
        if (void* p = std::aligned_alloc(align, rounded)) {
            count_allocation(size);
            return p;
        }
        std::new_handler handler = std::get_new_handler();
        if (handler == nullptr)
            throw std::bad_alloc{};
        handler();
    }
}

}  // namespace

void* operator new(std::size_t size)
{
    return allocate(size);
}

void* operator new[](std::size_t size)
{
    return allocate(size);
}

void* operator new(std::size_t size, std::align_val_t alignment)
{
    return allocate_aligned(size, alignment);
}

void* operator new[](std::size_t size, std::align_val_t alignment)
{
    return allocate_aligned(size, alignment);
}

void* operator new(std::size_t size, const std::nothrow_t&) noexcept
{
    try {
        return allocate(size);
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}

void* operator new[](std::size_t size, const std::nothrow_t&) noexcept
{
    try {
        return allocate(size);
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}

void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept
{
    try {
        return allocate_aligned(size, alignment);
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}

void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept
{
    try {
        return allocate_aligned(size, alignment);
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}

void operator delete(void* p) noexcept
{
    release(p);
}

void operator delete[](void* p) noexcept
{
    release(p);
}

void operator delete(void* p, std::size_t) noexcept
{
    release(p);
}

void operator delete[](void* p, std::size_t) noexcept
{
    release(p);
}

void operator delete(void* p, std::align_val_t) noexcept
{
    release(p);
}

void operator delete[](void* p, std::align_val_t) noexcept
{
    release(p);
}

void operator delete(void* p, std::size_t, std::align_val_t) noexcept
{
    release(p);
}

void operator delete[](void* p, std::size_t, std::align_val_t) noexcept
{
    release(p);
}

void operator delete(void* p, const std::nothrow_t&) noexcept
{
    release(p);
}

void operator delete[](void* p, const std::nothrow_t&) noexcept
{
    release(p);
}

void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept
{
    release(p);
}

void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept
{
    release(p);
}

namespace agent {

AllocCounts alloc_counts() noexcept
{
    return {g_allocations.load(std::memory_order_relaxed), g_frees.load(std::memory_order_relaxed),
            g_bytes.load(std::memory_order_relaxed)};
}

}  // namespace agent
