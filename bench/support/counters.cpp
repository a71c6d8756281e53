#include "support/detail/counters.hpp"

#include <algorithm>
#include <array>
#include <atomic>

namespace bench::detail {

namespace {

/// One per thread, never released: the counts of a thread that ended still count for the
/// process. Only the owning thread writes (plain load + store, no read-modify-write on the hot
/// path); others only read. Threads beyond the table share the last slot through fetch_add.
struct Slot {
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> bytes{0};
};

constexpr std::size_t slot_count = 4096;
std::array<Slot, slot_count> slots;
std::atomic<std::size_t> slots_used{0};
thread_local Slot* own_slot = nullptr;
thread_local bool own_slot_shared = false;

Slot& slot() noexcept
{
    if (own_slot == nullptr) {
        const std::size_t i = slots_used.fetch_add(1, std::memory_order_relaxed);
        own_slot_shared = i >= slot_count - 1;
        own_slot = &slots[own_slot_shared ? slot_count - 1 : i];
    }
    return *own_slot;
}

}  // namespace

void count_allocation(std::size_t size) noexcept
{
    Slot& s = slot();
    if (own_slot_shared) {
        s.count.fetch_add(1, std::memory_order_relaxed);
        s.bytes.fetch_add(size, std::memory_order_relaxed);
        return;
    }
    s.count.store(s.count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    s.bytes.store(s.bytes.load(std::memory_order_relaxed) + size, std::memory_order_relaxed);
}

Allocations counted_thread() noexcept
{
    Slot& s = slot();
    return {s.count.load(std::memory_order_relaxed), s.bytes.load(std::memory_order_relaxed)};
}

Allocations counted_process() noexcept
{
    Allocations total;
    const std::size_t used = std::min(slots_used.load(std::memory_order_relaxed), slot_count);
    for (std::size_t i = 0; i < used; ++i) {
        total.count += slots[i].count.load(std::memory_order_relaxed);
        total.bytes += slots[i].bytes.load(std::memory_order_relaxed);
    }
    return total;
}

}  // namespace bench::detail
