#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

namespace agent {

/// A FIFO that never holds more than `capacity` items: pushing onto a full queue evicts the
/// oldest item and hands it back, so the caller can count and account for it. Sans-I/O; the
/// waiting lives in BatchQueue. Not thread-safe.
template <class T>
class DropOldestQueue {
public:
    explicit DropOldestQueue(std::size_t capacity) : capacity_(capacity) { assert(capacity > 0); }

    /// Appends `item`; returns the evicted oldest item when the queue was full.
    std::optional<T> push(T item)
    {
        std::optional<T> evicted;
        if (items_.size() == capacity_) {
            evicted.emplace(std::move(items_.front()));
            items_.pop_front();
            ++dropped_;
        }
        items_.push_back(std::move(item));
        return evicted;
    }

    std::optional<T> pop()
    {
        if (items_.empty())
            return std::nullopt;
        std::optional<T> item{std::move(items_.front())};
        items_.pop_front();
        return item;
    }

    std::size_t size() const noexcept { return items_.size(); }
    bool empty() const noexcept { return items_.empty(); }
    std::size_t capacity() const noexcept { return capacity_; }
    /// Items evicted since construction.
    std::uint64_t dropped() const noexcept { return dropped_; }

private:
    std::deque<T> items_;
    std::size_t capacity_;
    std::uint64_t dropped_ = 0;
};

}  // namespace agent
