#pragma once

// Deferred freeing for lock-free readers (epoch-based reclamation). MemoryStorage looks names up
// without a lock; a writer that replaces a slot array (a table grows) or drops entries (clear)
// cannot free them while a reader may still be probing them. Readers mark their short read
// sections in a per-thread slot; a writer retires the old memory and frees it once every thread
// that was inside a section when it was retired has left it.
//
// Written here rather than taken from liburcu: its fast flavour (membarrier) needs every reader
// thread registered by hand and is invisible to ThreadSanitizer, and this needs only the small
// part below. Readers pay one plain store on entry and one on exit, with no atomic
// read-modify-write, where the system has membarrier(2) (Linux >= 4.14): the writer's rare
// membarrier call orders the readers' stores for them (the asymmetric fence of liburcu and
// folly). Elsewhere, and under ThreadSanitizer, which cannot see that fence, a reader's entry is
// an atomic exchange.

#include <atomic>
#include <cstdint>
#include <utility>
#include <vector>

namespace storage::detail {

/// One thread's read-section state: odd while the thread is inside a section. Only its thread
/// writes it, and it only ever grows, so a writer that saw one value and later sees another
/// knows that the section it saw has ended.
struct alignas(64) ReaderSlot {
    std::atomic<std::uint64_t> state{0};
    std::atomic<bool> leased{false};
};

/// The calling thread's slot (taken from a process-wide registry on first use, handed back when
/// the thread exits).
ReaderSlot& this_thread_slot();

/// True where the writers' membarrier(2) orders the readers' stores: readers then need no fence.
extern const bool asymmetric_fences;

/// A read section: lock-free lookups may follow pointers that writers retire while it lasts.
/// Sections are short and never nest, and a reader never waits for anything inside one.
class ReadGuard {
public:
    ReadGuard() : slot_(this_thread_slot())
    {
        const std::uint64_t entered = slot_.state.load(std::memory_order_relaxed) + 1;
        if (asymmetric_fences) {
            slot_.state.store(entered, std::memory_order_relaxed);
            std::atomic_signal_fence(std::memory_order_seq_cst);  // the writer's membarrier does the rest
        } else {
            slot_.state.exchange(entered, std::memory_order_seq_cst);
        }
    }
    ~ReadGuard() { slot_.state.store(slot_.state.load(std::memory_order_relaxed) + 1, std::memory_order_release); }
    ReadGuard(const ReadGuard&) = delete;
    ReadGuard& operator=(const ReadGuard&) = delete;

private:
    ReaderSlot& slot_;
};

/// Memory that readers may still hold: freed by `free(pointer)`.
struct Garbage {
    void* pointer;
    void (*free)(void*) noexcept;
};

/// The retired memory of one writer (a shard table). Not thread-safe: its writer's lock guards
/// it. Frees nothing early and never waits for readers: what a grace period has not yet covered
/// waits for a later poll(), or for the destructor.
class Retired {
public:
    Retired() = default;
    ~Retired();  ///< frees everything: no reader may remain when the owner is destroyed
    Retired(const Retired&) = delete;
    Retired& operator=(const Retired&) = delete;

    /// Makes room for one add() so that add() cannot throw (call before unpublishing the memory).
    void reserve_one() { fresh_.reserve(fresh_.size() + 1); }

    /// Retires memory that readers can no longer reach, but may still hold. Call reserve_one()
    /// first.
    void add(Garbage garbage) noexcept;

    /// Frees what a completed grace period covers, and starts the next one.
    void poll() noexcept;

    bool empty() const noexcept { return waiting_.empty() && fresh_.empty(); }

private:
    bool grace_period_over() noexcept;
    bool scan_readers() noexcept;  ///< fills inside_; false when out of memory
    static void free_all(std::vector<Garbage>& garbage) noexcept;

    std::vector<Garbage> waiting_;  ///< retired before the readers in `inside_` were seen
    std::vector<Garbage> fresh_;    ///< retired since
    /// Slots seen inside a section (with the state seen) after waiting_ became unreachable.
    std::vector<std::pair<const ReaderSlot*, std::uint64_t>> inside_;
    bool scanned_ = false;  ///< inside_ describes waiting_'s grace period
};

}  // namespace storage::detail
