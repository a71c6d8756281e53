#pragma once

#include <cassert>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace core {

/// A growable byte buffer that leaves new bytes uninitialised, for storage that a writer fills
/// (a decompressor, a socket read): zero-filling a large buffer before overwriting it costs as
/// much as the write and makes every page of it resident at once. Bytes [0, size()) are the
/// contents; [size(), capacity()) is room that `data() + size()` may be written into before
/// `resize` claims it. Not thread-safe. Growth and `reserve` throw std::bad_alloc.
class ByteBuffer {
public:
    ByteBuffer() = default;
    ByteBuffer(ByteBuffer&&) noexcept = default;
    ByteBuffer& operator=(ByteBuffer&&) noexcept = default;

    char* data() noexcept { return data_.get(); }
    const char* data() const noexcept { return data_.get(); }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return capacity_; }
    bool empty() const noexcept { return size_ == 0; }
    std::string_view view() const noexcept { return {data_.get(), size_}; }

    void clear() noexcept { size_ = 0; }

    /// Capacity at least `n`, keeping the contents (the only bytes copied on reallocation).
    void reserve(std::size_t n)
    {
        if (n <= capacity_)
            return;
        std::unique_ptr<char[]> grown{new char[n]};  // default-initialised: no zero fill
        if (size_ > 0)
            std::memcpy(grown.get(), data_.get(), size_);
        data_ = std::move(grown);
        capacity_ = n;
    }

    /// Sets the size; bytes beyond the old size are whatever was written there (or undefined).
    void resize(std::size_t n)
    {
        reserve(n);
        size_ = n;
    }

    /// Drops the first `n` bytes, moving the rest to the front.
    void erase_front(std::size_t n) noexcept
    {
        assert(n <= size_);
        if (n == 0)
            return;
        std::memmove(data_.get(), data_.get() + n, size_ - n);
        size_ -= n;
    }

    /// Reallocates to `keep` bytes of capacity, keeping the contents, when the capacity exceeds
    /// `keep` and the contents fit in it (otherwise nothing changes). How a long-lived owner
    /// gives back the memory that one large request made it grow.
    void shrink_to(std::size_t keep)
    {
        if (capacity_ <= keep || size_ > keep)
            return;
        std::unique_ptr<char[]> small{keep > 0 ? new char[keep] : nullptr};
        if (size_ > 0)
            std::memcpy(small.get(), data_.get(), size_);
        data_ = std::move(small);
        capacity_ = keep;
    }

private:
    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

}  // namespace core
