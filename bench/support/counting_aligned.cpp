// Counts the aligned C allocators too: simdjson allocates its buffers with posix_memalign,
// bypassing operator new. (Asio's frames go through operator new: the build sets
// ASIO_DISABLE_STD_ALIGNED_ALLOC.) Defining them in the executable interposes them for the whole process; each
// forwards to the next definition (glibc's, or a preloaded profiler's), so heaptrack still works
// on bench binaries.
#include "support/detail/counters.hpp"

#include <dlfcn.h>
#include <malloc.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

namespace bench::detail {

namespace {

using AlignedAlloc = void* (*)(std::size_t, std::size_t);

/// Resolved on first use; dlsym allocates only with plain malloc/calloc, never through here.
AlignedAlloc next() noexcept
{
    static std::atomic<AlignedAlloc> resolved{nullptr};
    AlignedAlloc f = resolved.load(std::memory_order_acquire);
    if (f == nullptr) {
        f = reinterpret_cast<AlignedAlloc>(dlsym(RTLD_NEXT, "aligned_alloc"));
        if (f == nullptr)
            std::abort();  // no C library below us: nothing sensible to do
        resolved.store(f, std::memory_order_release);
    }
    return f;
}

bool power_of_two(std::size_t n) noexcept
{
    return n != 0 && (n & (n - 1)) == 0;
}

}  // namespace

void* next_aligned_alloc(std::size_t alignment, std::size_t size) noexcept
{
    return next()(alignment, size);
}

}  // namespace bench::detail

// C linkage, the C library's contracts; glibc's free releases all of them.
extern "C" {

void* aligned_alloc(std::size_t alignment, std::size_t size)
{
    bench::detail::count_allocation(size);
    return bench::detail::next_aligned_alloc(alignment, size);
}

void* memalign(std::size_t alignment, std::size_t size)
{
    bench::detail::count_allocation(size);
    return bench::detail::next_aligned_alloc(alignment, size);
}

int posix_memalign(void** out, std::size_t alignment, std::size_t size)
{
    if (!bench::detail::power_of_two(alignment) || alignment % sizeof(void*) != 0)
        return EINVAL;
    bench::detail::count_allocation(size);
    void* p = bench::detail::next_aligned_alloc(alignment, size);
    if (p == nullptr && size != 0)
        return ENOMEM;
    *out = p;
    return 0;
}

}  // extern "C"
