#pragma once

// File operations that fail or wait on demand, for the write-ahead log's and the durable store's
// tests (storage::wal::FileOps).

#include "core/file.hpp"
#include "storage/wal.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string_view>

namespace test {

/// How many of the next writes, and of the next syncs, fail (ENOSPC, EIO).
inline std::atomic<int> failing_writes{0};
inline std::atomic<int> failing_syncs{0};
/// How much of a failing write still reaches the file, as a full disk gives a short write.
inline std::atomic<int> partial_bytes{0};

inline bool failing_write_all(int fd, std::string_view data) noexcept
{
    if (failing_writes.load() > 0) {
        --failing_writes;
        const auto part = std::min<std::size_t>(static_cast<std::size_t>(partial_bytes.load()), data.size());
        if (part > 0 && ::write(fd, data.data(), part) < 0)
            return false;
        errno = ENOSPC;
        return false;
    }
    return core::file::write_all(fd, data);
}

inline int failing_fdatasync(int fd)
{
    if (failing_syncs.load() > 0) {
        --failing_syncs;
        errno = EIO;
        return -1;
    }
    return ::fdatasync(fd);
}

inline constexpr storage::wal::FileOps failing_file_ops{&failing_write_all, &failing_fdatasync};

/// While closed, holds every sync made through `gated_fdatasync`, so that appends pile up behind it.
class SyncGate {
public:
    void close()
    {
        std::lock_guard lock{mutex_};
        open_ = false;
        entered_ = false;
    }
    /// Returns once a sync waits at the closed gate.
    void wait_until_entered()
    {
        std::unique_lock lock{mutex_};
        cv_.wait(lock, [this] { return entered_; });
    }
    void open()
    {
        {
            std::lock_guard lock{mutex_};
            open_ = true;
        }
        cv_.notify_all();
    }
    int fdatasync(int fd)
    {
        {
            std::unique_lock lock{mutex_};
            entered_ = true;
            cv_.notify_all();
            cv_.wait(lock, [this] { return open_; });
        }
        return ::fdatasync(fd);
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = true;
    bool entered_ = false;
};

inline SyncGate sync_gate;

inline int gated_fdatasync(int fd)
{
    return sync_gate.fdatasync(fd);
}

}  // namespace test
