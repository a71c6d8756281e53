#pragma once

// The hash table of one MemoryStorage shard: open addressing with linear probing over a
// power-of-two array of (hash, entry pointer) slots. Written here rather than taken from a
// library because none in Debian fits: std::unordered_set costs a node per element (a 32-byte
// chunk and a dependent load on every lookup) and a division by a prime per lookup, and the
// well-kept flat tables (abseil, boost::unordered_flat_set) are not packaged in the versions
// this project builds with. It is small: find, insert, erase, clear and iteration.

#include "core/bytes.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <utility>

namespace storage::detail {

/// One metric: the value, then the name's bytes, in a single allocation.
template <class V>
class Entry {
public:
    V value;

    std::string_view name() const noexcept { return {reinterpret_cast<const char*>(this + 1), size_}; }

    static Entry* make(std::string_view name, V value)
    {
        auto* e = static_cast<Entry*>(::operator new(sizeof(Entry) + name.size()));
        e->value = value;
        e->size_ = static_cast<std::uint32_t>(name.size());
        std::memcpy(e + 1, name.data(), name.size());
        return e;
    }
    static void destroy(Entry* e) noexcept { ::operator delete(e); }

private:
    std::uint32_t size_;
};

/// Name to Entry<V>*, owning the entries. Not thread-safe (the shard's mutex guards it).
/// Memory per element: a 16-byte slot at a load factor between 3/8 and 3/4 (21 to 43 bytes)
/// plus the entry's chunk. Lookups compare the full hash before the name.
template <class V>
class EntryTable {
public:
    EntryTable() = default;
    ~EntryTable() { clear(); }
    EntryTable(const EntryTable&) = delete;
    EntryTable& operator=(const EntryTable&) = delete;

    /// The entry named `name` (whose hash is `hash`), or nullptr.
    Entry<V>* find(std::string_view name, std::size_t hash) const noexcept
    {
        if (size_ == 0)
            return nullptr;
        for (std::size_t i = home(hash);; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.entry == nullptr)
                return nullptr;
            if (s.hash == hash && same_name(s.entry->name(), name))
                return s.entry;
        }
    }

    /// Adds `name`, which must be absent. Strong guarantee: on bad_alloc nothing changed.
    Entry<V>* insert(std::string_view name, std::size_t hash, V value)
    {
        std::unique_ptr<Entry<V>, Free> entry{Entry<V>::make(name, value)};
        if ((size_ + 1) * 4 > capacity() * 3)
            grow();
        place({hash, entry.get()});
        ++size_;
        return entry.release();
    }

    /// Removes `name` if present (backward-shift deletion: no tombstones, probes stay short).
    void erase(std::string_view name, std::size_t hash) noexcept
    {
        if (size_ == 0)
            return;
        std::size_t hole = home(hash);
        for (;; hole = (hole + 1) & mask_) {
            const Slot& s = slots_[hole];
            if (s.entry == nullptr)
                return;
            if (s.hash == hash && same_name(s.entry->name(), name))
                break;
        }
        Entry<V>::destroy(slots_[hole].entry);
        --size_;
        // Move back every later slot of the run that may sit at or before the hole.
        for (std::size_t j = (hole + 1) & mask_; slots_[j].entry != nullptr; j = (j + 1) & mask_) {
            const std::size_t want = home(slots_[j].hash);
            // Slot j may move to the hole unless its home lies cyclically in (hole, j].
            if (((j - want) & mask_) >= ((j - hole) & mask_)) {
                slots_[hole] = slots_[j];
                hole = j;
            }
        }
        slots_[hole] = Slot{};
    }

    void clear() noexcept
    {
        for (std::size_t i = 0; i < capacity(); ++i)
            if (slots_[i].entry != nullptr)
                Entry<V>::destroy(slots_[i].entry);
        slots_.reset();
        mask_ = 0;
        size_ = 0;
    }

    std::size_t size() const noexcept { return size_; }

    /// Calls f(const Entry<V>&) for every element, in no particular order.
    template <class F>
    void for_each(F&& f) const
    {
        for (std::size_t i = 0; i < capacity(); ++i)
            if (slots_[i].entry != nullptr)
                f(*slots_[i].entry);
    }

private:
    struct Slot {
        std::size_t hash = 0;
        Entry<V>* entry = nullptr;  ///< nullptr: empty
    };
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

    std::size_t capacity() const noexcept { return slots_ ? mask_ + 1 : 0; }

    /// The first slot to probe. The shard was chosen by the hash's low bits, which are then
    /// the same for every name here: Fibonacci hashing spreads by the high bits instead.
    std::size_t home(std::size_t hash) const noexcept
    {
        return static_cast<std::size_t>((hash * 0x9E3779B97F4A7C15ULL) >> shift_);
    }

    void place(Slot s) noexcept
    {
        std::size_t i = home(s.hash);
        while (slots_[i].entry != nullptr)
            i = (i + 1) & mask_;
        slots_[i] = s;
    }

    void grow()
    {
        const std::size_t old_capacity = capacity();
        const std::size_t next = old_capacity == 0 ? min_capacity : old_capacity * 2;
        std::unique_ptr<Slot[]> old = std::exchange(slots_, std::make_unique<Slot[]>(next));
        mask_ = next - 1;
        shift_ = 64 - static_cast<unsigned>(std::countr_zero(next));
        for (std::size_t i = 0; i < old_capacity; ++i)
            if (old[i].entry != nullptr)
                place(old[i]);
    }

    std::unique_ptr<Slot[]> slots_;
    std::size_t mask_ = 0;
    unsigned shift_ = 64;
    std::size_t size_ = 0;
};

}  // namespace storage::detail
