#pragma once

// The hash table of one MemoryStorage shard: open addressing with linear probing over a
// power-of-two array of (hash, entry pointer) slots. Written here rather than taken from a
// library because none in Debian fits: std::unordered_set costs a node per element (a 32-byte
// chunk and a dependent load on every lookup) and a division by a prime per lookup, and the
// well-kept flat tables (abseil, boost::unordered_flat_set) are not packaged in the versions
// this project builds with, nor do the concurrent ones (liburcu's rculfhash, TBB's
// concurrent_hash_map) let a lookup be a few plain loads. It is small: find, insert, clear and
// iteration.

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

/// One metric: the value, then the name's bytes, in a single allocation. The name never
/// changes; the value is atomic because lock-free readers and writers share it.
template <class V>
class Entry {
public:
    static_assert(std::atomic<V>::is_always_lock_free);

    V load() const noexcept { return value_.load(std::memory_order_relaxed); }
    void store(V value) noexcept { value_.store(value, std::memory_order_relaxed); }

    std::string_view name() const noexcept { return {reinterpret_cast<const char*>(this + 1), size_}; }

    /// Who may change a counter's value now (MemoryStorage's counter lock). Gauges ignore it.
    std::atomic<std::uint8_t>& owner() noexcept { return owner_; }

    static Entry* make(std::string_view name, V value)
    {
        void* raw = ::operator new(sizeof(Entry) + name.size());
        auto* e = new (raw) Entry{static_cast<std::uint32_t>(name.size()), value};
        std::memcpy(static_cast<char*>(raw) + sizeof(Entry), name.data(), name.size());
        return e;
    }
    static void destroy(Entry* e) noexcept
    {
        e->~Entry();
        ::operator delete(e);
    }

private:
    Entry(std::uint32_t size, V value) noexcept : value_(value), size_(size) {}

    std::atomic<V> value_;
    std::uint32_t size_;
    std::atomic<std::uint8_t> owner_{0};
};

/// Name to Entry<V>*, owning the entries. One writer at a time (the shard's mutex), and any
/// number of lock-free readers: find() may run inside a ReadGuard while the writer inserts.
/// Readers never see a half-written slot (a slot is written once: hash, then entry, released),
/// and a grown table keeps its old slot array, and clear() its entries, until no reader can
/// hold them (Retired). Entries are never removed one by one, so a slot never changes after it
/// is filled; a reader on an old array may miss names inserted since, never find a wrong one.
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
            if (s.hash.load(std::memory_order_relaxed) == hash && same_name(e->name(), name))
                return e;
        }
    }

    /// Writer: adds `name`, which must be absent. Strong guarantee: on bad_alloc nothing changed.
    Entry<V>* insert(std::string_view name, std::size_t hash, V value)
    {
        std::unique_ptr<Entry<V>, Free> entry{Entry<V>::make(name, value)};
        reserve(1);
        place(entry.get(), hash);
        return entry.release();
    }

    /// Writer: makes room for `extra` more names, so that as many place() calls cannot fail.
    void reserve(std::size_t extra)
    {
        retired_.poll();
        const std::size_t capacity = this->capacity();
        if ((size_ + extra) * 4 <= capacity * 3)
            return;
        std::size_t next = std::max(min_capacity, capacity * 2);
        while ((size_ + extra) * 4 > next * 3)
            next *= 2;
        grow(next);
    }

    /// Writer: adds an entry made by Entry<V>::make, whose name is absent, after reserve().
    /// Readers can find it from here on; the table owns it.
    void place(Entry<V>* e, std::size_t hash) noexcept
    {
        place_in(*slots_.load(std::memory_order_relaxed), e, hash);
        ++size_;
    }

    /// Writer: removes every entry. Readers may still hold them: they are freed later.
    void clear()
    {
        retired_.reserve_one();
        if (Slots* old = slots_.exchange(nullptr, std::memory_order_acq_rel))
            retired_.add({old, &destroy_with_entries});
        size_ = 0;
    }

    /// Writer only.
    std::size_t size() const noexcept { return size_; }

    /// Writer only: calls f(const Entry<V>&) for every element, in no particular order.
    template <class F>
    void for_each(F&& f) const
    {
        const Slots* t = slots_.load(std::memory_order_relaxed);
        for (std::size_t i = 0; t != nullptr && i <= t->mask; ++i)
            if (const Entry<V>* e = t->at(i).entry.load(std::memory_order_relaxed))
                f(*e);
    }

private:
    struct Slot {
        std::atomic<std::size_t> hash{0};
        std::atomic<Entry<V>*> entry{nullptr};  ///< nullptr: empty
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

    /// a == b for names, inline up to 16 bytes (most names are 4 to 16), where memcmp is a call
    /// through the PLT (3 % of a /updates/ of 1000 on a live server, perf).
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
            if (Entry<V>* e = t->at(i).entry.load(std::memory_order_relaxed))
                Entry<V>::destroy(e);
        Slots::destroy(t);
    }

    std::size_t capacity() const noexcept
    {
        const Slots* t = slots_.load(std::memory_order_relaxed);
        return t == nullptr ? 0 : t->mask + 1;
    }

    /// Fills the first free slot of e's run: the hash first, then the entry, released, so that a
    /// reader that sees the entry sees its hash and its bytes.
    static void place_in(Slots& t, Entry<V>* e, std::size_t hash) noexcept
    {
        std::size_t i = t.home(hash);
        while (t.at(i).entry.load(std::memory_order_relaxed) != nullptr)
            i = (i + 1) & t.mask;
        t.at(i).hash.store(hash, std::memory_order_relaxed);
        t.at(i).entry.store(e, std::memory_order_release);
    }

    /// Copies every slot into a new array of `capacity` slots and publishes it; the old array is
    /// retired, not freed: readers may be probing it.
    void grow(std::size_t capacity)
    {
        retired_.reserve_one();
        Slots* next = Slots::make(capacity);
        Slots* old = slots_.load(std::memory_order_relaxed);
        for (std::size_t i = 0; old != nullptr && i <= old->mask; ++i)
            if (Entry<V>* e = old->at(i).entry.load(std::memory_order_relaxed))
                place_in(*next, e, old->at(i).hash.load(std::memory_order_relaxed));
        slots_.store(next, std::memory_order_release);
        if (old != nullptr)
            retired_.add({old, &Slots::destroy});
    }

    std::atomic<Slots*> slots_{nullptr};
    std::size_t size_ = 0;
    Retired retired_;
};

}  // namespace storage::detail
