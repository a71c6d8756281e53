#pragma once

// Opening and creating the files the server keeps (snapshot, write-ahead log, audit file)
// safely in a directory that other users may write to, such as /tmp:
//  - nothing follows a symbolic link planted at the path (O_NOFOLLOW, or O_EXCL on create);
//  - nothing blocks on a FIFO or a device planted there (O_NONBLOCK while opening; O_NOCTTY:
//    a terminal never becomes the daemon's controlling one), and
//    anything but a regular file is refused;
//  - a file to be replaced is written under a fresh unpredictable name beside it and renamed.
// Descriptors are close-on-exec. Errors come back as one line of text for the caller to log
// or to print at start-up; nothing here logs or throws.

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>

namespace core::file {

/// An owned file descriptor, closed on destruction.
class Fd {
public:
    Fd() noexcept = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept
    {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }

    int get() const noexcept { return fd_; }
    bool ok() const noexcept { return fd_ >= 0; }
    /// Closes now and returns close()'s result: after writes it can report a deferred I/O error.
    int close() noexcept;
    void reset() noexcept;

private:
    int fd_ = -1;
};

/// A descriptor, or why there is none.
struct Opened {
    Fd fd;
    std::string error;     ///< empty on success; else the reason in words ("a FIFO, not a regular file")
    bool missing = false;  ///< failed because nothing exists at the path
    explicit operator bool() const noexcept { return fd.ok(); }
};

/// Opens an existing regular file for reading. A symbolic link, FIFO, socket, device or
/// directory at `path` is refused without blocking.
Opened open_regular_for_read(const std::string& path);

/// Opens `path` for appending, creating it with `mode` if it does not exist (the write-ahead
/// log, the audit file). The same refusals as open_regular_for_read.
Opened open_regular_for_append(const std::string& path, mode_t mode = 0600);

/// A new empty file (mode 0600) created exclusively under an unpredictable name beside
/// `path` ("<path>.tmp.XXXXXX"), to be renamed over `path` once written.
struct TempFile {
    Opened file;
    std::string path;  ///< its name, for the rename or the unlink
};
TempFile create_temp_beside(const std::string& path);

/// Writes all of `data`, retrying short writes and EINTR. False: errno says why.
bool write_all(int fd, std::string_view data) noexcept;

/// fsyncs the directory `dir`, which makes a rename in it durable. False: errno says why.
bool sync_directory(const std::string& dir) noexcept;

/// The directory part of `path` ("." when it has none).
std::string directory_of(const std::string& path);

}  // namespace core::file
