#pragma once

// The hash table of one MemoryMap shard: open addressing with linear probing over a
// power-of-two array of (hash, entry pointer) slots. Written here rather than taken from a
// library because none in Debian fits: std::unordered_set costs a node per element (a 32-byte
// chunk and a dependent load on every lookup) and a division by a prime per lookup, and the
// well-kept flat tables (abseil, boost::unordered_flat_set) are not packaged in the versions
// this project builds with, nor do the concurrent ones (liburcu's rculfhash, TBB's
// concurrent_hash_map) let a lookup be a few plain loads. It is small: find, insert, remove,
// clear and iteration.

#include "core/bytes.hpp"
#include "storage/detail/reclaim.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

namespace storage::detail {

/// One metric: its value, the time and log sequence number of its last change, then the name's
/// bytes, in a single allocation. The name never changes. Value, time and seq are atomics because
/// lock-free readers share them with writers; writers change the three together while they hold
/// the entry's lock byte (lock()), so that a reader that holds it too sees them from one change.
template <class V>
class Entry {
public:
    static_assert(std::atomic<V>::is_always_lock_free);

    /// The states of the lock byte.
    enum State : std::uint8_t {
        free = 0,
        held = 1,     ///< a writer (or a consistent reader) is at work on the entry
        removed = 2,  ///< unlinked from its table: never changes again, freed after a grace period
    };

    V load() const noexcept { return value_.load(std::memory_order_relaxed); }
    void store(V value) noexcept { value_.store(value, std::memory_order_relaxed); }
    std::int64_t updated_at() const noexcept { return updated_at_.load(std::memory_order_relaxed); }
    std::uint64_t seq() const noexcept { return seq_.load(std::memory_order_relaxed); }
    /// Sets the value with the time and seq of the change that made it.
    void set(V value, std::uint64_t seq, std::int64_t time) noexcept
    {
        store(value);
        seq_.store(seq, std::memory_order_relaxed);
        updated_at_.store(time, std::memory_order_relaxed);
    }

    std::string_view name() const noexcept { return {reinterpret_cast<const char*>(this + 1), size_}; }

    /// The entry's lock byte (see State), taken by MemoryMap with a compare-exchange. Mutable:
    /// a reader that wants the three fields of one change takes it too.
    std::atomic<std::uint8_t>& lock() const noexcept { return lock_; }

    static Entry* make(std::string_view name, V value, std::uint64_t seq = 0, std::int64_t time = 0)
    {
        void* raw = ::operator new(sizeof(Entry) + name.size());
        auto* e = new (raw) Entry{static_cast<std::uint32_t>(name.size()), value, seq, time};
        std::memcpy(static_cast<char*>(raw) + sizeof(Entry), name.data(), name.size());
        return e;
    }
    static void destroy(Entry* e) noexcept
    {
        e->~Entry();
        ::operator delete(e);
    }

private:
    Entry(std::uint32_t size, V value, std::uint64_t seq, std::int64_t time) noexcept
        : value_(value), updated_at_(time), seq_(seq), size_(size)
    {
    }

    std::atomic<V> value_;
    std::atomic<std::int64_t> updated_at_;
    std::atomic<std::uint64_t> seq_;
    std::uint32_t size_;
    mutable std::atomic<std::uint8_t> lock_{free};
};

/// Name to Entry<V>*, owning the entries. One writer at a time (the shard's mutex), and any
/// number of lock-free readers: find() may run inside a ReadGuard while the writer inserts or
/// removes. Readers never see a half-written slot (a slot's hash is written before its entry,
/// which is released), and memory a reader may hold is retired, not freed, until no reader can
/// hold it (Retired): a grown table's old slot array, clear()'s entries, a removed entry.
///
/// remove() leaves a tombstone in the slot, so that probe runs through it stay unbroken; an
/// insert may reuse it, and grow or rehash drops them all. A reader on a slot that changes under
/// it may miss a name inserted meanwhile, or find one removed meanwhile (whose lock byte says
/// Entry::removed), never a wrong one.
///
/// Memory per element: a 16-byte slot at a load factor between 3/8 and 3/4 (21 to 43 bytes)
/// plus the entry's chunk, plus the previous slot array until the next grace period ends.
/// Lookups compare the full hash before the name.
template <class V>
class EntryTable {
public:
    EntryTable() = default;
    ~EntryTable() { destroy_with_entries(slots_.load(std::memory_order_relaxed)); }
    EntryTable(const EntryTable&) = delete;
    EntryTable& operator=(const EntryTable&) = delete;

    /// The entry named `name` (whose hash is `hash`), or nullptr. From the writer, or from any
    /// thread inside a ReadGuard.
    Entry<V>* find(std::string_view name, std::size_t hash) const noexcept
    {
        const Slots* t = slots_.load(std::memory_order_acquire);
        if (t == nullptr)
            return nullptr;
        for (std::size_t i = t->home(hash);; i = (i + 1) & t->mask) {
            const Slot& s = t->at(i);
            Entry<V>* e = s.entry.load(std::memory_order_acquire);
            if (e == nullptr)
                return nullptr;
            if (e != tombstone() && s.hash.load(std::memory_order_relaxed) == hash && same_name(e->name(), name))
                return e;
        }
    }

    /// Writer: adds `name`, which must be absent. Strong guarantee: on bad_alloc nothing changed.
    Entry<V>* insert(std::string_view name, std::size_t hash, V value, std::uint64_t seq = 0, std::int64_t time = 0)
    {
        std::unique_ptr<Entry<V>, Free> entry{Entry<V>::make(name, value, seq, time)};
        reserve(1);
        place(entry.get(), hash);
        return entry.release();
    }

    /// Writer: makes room for `extra` more names, so that as many place() calls cannot fail.
    void reserve(std::size_t extra)
    {
        retired_.poll();
        const std::size_t capacity = this->capacity();
        if ((size_ + tombstones_ + extra) * 4 <= capacity * 3)
            return;
        // Live names within 3/8 of the slots (the rest tombstones): rehash at the same size;
        // else double until the names fit.
        std::size_t next = std::max(min_capacity, capacity);
        if ((size_ + extra) * 8 > next * 3)
            do
                next *= 2;
            while ((size_ + extra) * 4 > next * 3);
        grow(next);
    }

    /// Writer: adds an entry made by Entry<V>::make, whose name is absent, after reserve().
    /// Readers can find it from here on; the table owns it.
    void place(Entry<V>* e, std::size_t hash) noexcept
    {
        if (place_in(*slots_.load(std::memory_order_relaxed), e, hash))
            --tombstones_;
        ++size_;
    }

    /// Writer: unlinks `e` (found in this table, with hash `hash`) and retires it: readers that
    /// hold it may go on reading it until their section ends. The caller has marked it
    /// Entry::removed, so that no one changes it any more. Cannot fail.
    void remove(Entry<V>* e, std::size_t hash) noexcept
    {
        Slots& t = *slots_.load(std::memory_order_relaxed);
        std::size_t i = t.home(hash);
        while (t.at(i).entry.load(std::memory_order_relaxed) != e)
            i = (i + 1) & t.mask;
        t.at(i).entry.store(tombstone(), std::memory_order_release);
        --size_;
        ++tombstones_;
        retired_.add({e, &free_entry});
    }

    /// Writer: makes room for one remove(), which then cannot fail (it retires the entry).
    void prepare_remove()
    {
        retired_.poll();
        retired_.reserve_one();
    }

    /// Writer: removes every entry. Readers may still hold them: they are freed later.
    void clear()
    {
        retired_.reserve_one();
        if (Slots* old = slots_.exchange(nullptr, std::memory_order_acq_rel))
            retired_.add({old, &destroy_with_entries});
        size_ = 0;
        tombstones_ = 0;
    }

    /// Writer only.
    std::size_t size() const noexcept { return size_; }
    /// Writer only: slots that hold a tombstone.
    std::size_t tombstones() const noexcept { return tombstones_; }
    /// Writer only: the slot array's size (0 before the first insert).
    std::size_t capacity() const noexcept
    {
        const Slots* t = slots_.load(std::memory_order_relaxed);
        return t == nullptr ? 0 : t->mask + 1;
    }

    /// Writer only: calls f(const Entry<V>&) for every element, in no particular order.
    template <class F>
    void for_each(F&& f) const
    {
        const Slots* t = slots_.load(std::memory_order_relaxed);
        for (std::size_t i = 0; t != nullptr && i <= t->mask; ++i)
            if (const Entry<V>* e = t->at(i).entry.load(std::memory_order_relaxed); live(e))
                f(*e);
    }

    /// Writer only: calls f(Entry<V>&, hash) for the elements in slots [begin, end) (clamped to
    /// the capacity); returns the end of the range visited. For a sweep done in bounded steps.
    template <class F>
    std::size_t for_range(std::size_t begin, std::size_t end, F&& f) const
    {
        const Slots* t = slots_.load(std::memory_order_relaxed);
        if (t == nullptr)
            return 0;
        end = std::min(end, t->mask + 1);
        for (std::size_t i = begin; i < end; ++i)
            if (Entry<V>* e = t->at(i).entry.load(std::memory_order_relaxed); live(e))
                f(*e, t->at(i).hash.load(std::memory_order_relaxed));
        return end;
    }

private:
    struct Slot {
        std::atomic<std::size_t> hash{0};
        std::atomic<Entry<V>*> entry{nullptr};  ///< nullptr: empty; tombstone(): removed
    };

    /// A slot array with its size, in one allocation: a reader gets both from one pointer.
    struct Slots {
        std::size_t mask;
        unsigned shift;

        Slot& at(std::size_t i) noexcept { return reinterpret_cast<Slot*>(this + 1)[i]; }
        const Slot& at(std::size_t i) const noexcept { return reinterpret_cast<const Slot*>(this + 1)[i]; }

        /// The first slot to probe. The shard was chosen by the hash's low bits, which are then
        /// the same for every name here: Fibonacci hashing spreads by the high bits instead.
        std::size_t home(std::size_t hash) const noexcept
        {
            return static_cast<std::size_t>((hash * 0x9E3779B97F4A7C15ULL) >> shift);
        }

        static Slots* make(std::size_t capacity)
        {
            void* raw = ::operator new(sizeof(Slots) + capacity * sizeof(Slot));
            auto* t = new (raw) Slots{capacity - 1, 64 - static_cast<unsigned>(std::countr_zero(capacity))};
            std::uninitialized_value_construct_n(&t->at(0), capacity);
            return t;
        }
        static void destroy(void* t) noexcept { ::operator delete(t); }  // slots and header are trivial
    };
    static_assert(sizeof(Slots) % alignof(Slot) == 0);
    static_assert(std::is_trivially_destructible_v<Slot>);

    struct Free {
        void operator()(Entry<V>* e) const noexcept { Entry<V>::destroy(e); }
    };

    static constexpr std::size_t min_capacity = 8;

    /// The mark of a removed slot: an address no entry has, never dereferenced.
    static Entry<V>* tombstone() noexcept { return reinterpret_cast<Entry<V>*>(alignof(Entry<V>)); }
    static bool live(const Entry<V>* e) noexcept { return e != nullptr && e != tombstone(); }

    static void free_entry(void* e) noexcept { Entry<V>::destroy(static_cast<Entry<V>*>(e)); }

    /// a == b for names, inline up to 16 bytes (most names are 4 to 16), where memcmp is a call
    /// through the PLT (measured in docs/PROFILING.md, BM_UpdatesBatch).
    static bool same_name(std::string_view a, std::string_view b) noexcept
    {
        const std::size_t n = a.size();
        if (n != b.size())
            return false;
        if (n <= 16)
            return core::bytes::equal_short(a.data(), b.data(), n);
        return std::memcmp(a.data(), b.data(), n) == 0;
    }

    static void destroy_with_entries(void* p) noexcept
    {
        auto* t = static_cast<Slots*>(p);
        if (t == nullptr)
            return;
        for (std::size_t i = 0; i <= t->mask; ++i)
            if (Entry<V>* e = t->at(i).entry.load(std::memory_order_relaxed); live(e))
                Entry<V>::destroy(e);
        Slots::destroy(t);
    }

    /// Fills the first free slot (empty or tombstone) of e's run: the hash first, then the entry,
    /// released, so that a reader that sees the entry sees its hash and its bytes. True when it
    /// reused a tombstone.
    static bool place_in(Slots& t, Entry<V>* e, std::size_t hash) noexcept
    {
        std::size_t i = t.home(hash);
        for (;;) {
            Entry<V>* held = t.at(i).entry.load(std::memory_order_relaxed);
            if (held == nullptr || held == tombstone())
                break;
            i = (i + 1) & t.mask;
        }
        const bool reused = t.at(i).entry.load(std::memory_order_relaxed) == tombstone();
        t.at(i).hash.store(hash, std::memory_order_relaxed);
        t.at(i).entry.store(e, std::memory_order_release);
        return reused;
    }

    /// Copies every live slot into a new array of `capacity` slots (tombstones stay behind) and
    /// publishes it; the old array is retired, not freed: readers may be probing it.
    void grow(std::size_t capacity)
    {
        retired_.reserve_one();
        Slots* next = Slots::make(capacity);
        Slots* old = slots_.load(std::memory_order_relaxed);
        for (std::size_t i = 0; old != nullptr && i <= old->mask; ++i)
            if (Entry<V>* e = old->at(i).entry.load(std::memory_order_relaxed); live(e))
                place_in(*next, e, old->at(i).hash.load(std::memory_order_relaxed));
        slots_.store(next, std::memory_order_release);
        tombstones_ = 0;
        if (old != nullptr)
            retired_.add({old, &Slots::destroy});
    }

    std::atomic<Slots*> slots_{nullptr};
    std::size_t size_ = 0;
    std::size_t tombstones_ = 0;
    Retired retired_;
};

}  // namespace storage::detail
