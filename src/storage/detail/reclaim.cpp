#include "storage/detail/reclaim.hpp"

#include <deque>
#include <mutex>
#include <new>

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define METRICS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define METRICS_TSAN 1
#endif
#endif

namespace storage::detail {

namespace {

/// Every reader slot ever leased, with stable addresses (a deque). It only grows, up to the
/// largest number of threads that used a store at once: a thread's slot goes back on exit.
struct Registry {
    std::mutex mutex;
    std::deque<ReaderSlot> slots;

    static Registry& get()
    {
        static Registry registry;  // outlives every thread_local lease
        return registry;
    }
};

struct Lease {
    ReaderSlot* slot;

    Lease()
    {
        Registry& r = Registry::get();
        std::lock_guard lock{r.mutex};
        for (ReaderSlot& s : r.slots)
            if (!s.leased.load(std::memory_order_relaxed)) {
                s.leased.store(true, std::memory_order_relaxed);
                slot = &s;
                return;
            }
        slot = &r.slots.emplace_back();
        slot->leased.store(true, std::memory_order_relaxed);
    }
    ~Lease()
    {
        std::lock_guard lock{Registry::get().mutex};
        slot->leased.store(false, std::memory_order_relaxed);
    }
};

bool register_membarrier() noexcept
{
#if defined(__linux__) && !defined(METRICS_TSAN)
    const long commands = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    return commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
           syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
    return false;
#endif
}

/// Orders every reader's earlier stores before the writer's next loads: with membarrier, each
/// running thread of the process executes a full barrier (a thread not running has passed one).
void heavy_fence() noexcept
{
    std::atomic_thread_fence(std::memory_order_seq_cst);
#if defined(__linux__)
    if (asymmetric_fences)
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
#endif
}

}  // namespace

const bool asymmetric_fences = register_membarrier();

ReaderSlot& this_thread_slot()
{
    thread_local Lease lease;
    return *lease.slot;
}

Retired::~Retired()
{
    free_all(waiting_);
    free_all(fresh_);
}

void Retired::add(Garbage garbage) noexcept
{
    fresh_.push_back(garbage);  // cannot throw after reserve_one()
    poll();
}

void Retired::poll() noexcept
{
    if (!waiting_.empty()) {
        if (!grace_period_over())
            return;
        free_all(waiting_);
    }
    if (fresh_.empty())
        return;
    // Start a grace period for what was retired since the last one: the memory is unreachable
    // now, so only readers inside a section at this point may still hold it.
    waiting_.swap(fresh_);
    heavy_fence();
    scanned_ = scan_readers();
    if (scanned_ && inside_.empty())
        free_all(waiting_);
}

bool Retired::scan_readers() noexcept
{
    try {
        inside_.clear();
        Registry& r = Registry::get();
        std::lock_guard lock{r.mutex};
        for (const ReaderSlot& s : r.slots)
            if (const std::uint64_t state = s.state.load(std::memory_order_acquire); state % 2 == 1)
                inside_.emplace_back(&s, state);
        return true;
    } catch (const std::bad_alloc&) {
        return false;  // the next poll scans again: a later scan only waits longer
    }
}

bool Retired::grace_period_over() noexcept
{
    if (!scanned_) {
        heavy_fence();
        scanned_ = scan_readers();
        return scanned_ && inside_.empty();
    }
    for (const auto& [slot, seen] : inside_)
        if (slot->state.load(std::memory_order_acquire) == seen)
            return false;
    return true;
}

void Retired::free_all(std::vector<Garbage>& garbage) noexcept
{
    for (const Garbage& g : garbage)
        g.free(g.pointer);
    garbage.clear();
}

}  // namespace storage::detail
