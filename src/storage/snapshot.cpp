#include "storage/snapshot.hpp"

#include "core/json.hpp"
#include "core/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace storage {

using core::Errc;
using core::OwnedMetric;
using core::Result;

namespace {

/// A file descriptor closed on scope exit (errors of an explicit close() are checked by callers
/// that care: after a write, close can report a deferred I/O error).
class Fd {
public:
    explicit Fd(int fd) noexcept : fd_(fd) {}
    ~Fd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    int get() const noexcept { return fd_; }
    bool ok() const noexcept { return fd_ >= 0; }
    int close() noexcept { return ::close(std::exchange(fd_, -1)); }

private:
    int fd_;
};

bool write_all(int fd, const char* data, std::size_t size) noexcept
{
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

/// Logs the failed step with errno's reason; returns io_error for the caller to pass on.
Errc fail_write(std::string_view step, const std::string& path)
{
    core::log::error("snapshot: {} {}: {}", step, path, std::strerror(errno));
    return Errc::io_error;
}

Errc fail_load(std::string_view why, const std::string& path)
{
    core::log::error("snapshot: cannot load {}: {}", path, why);
    return Errc::corrupt_snapshot;
}

std::string directory_of(const std::string& path)
{
    std::string dir = std::filesystem::path(path).parent_path().string();
    return dir.empty() ? "." : dir;
}

}  // namespace

Result<std::vector<OwnedMetric>> parse_snapshot(std::string_view body)
{
    if (body.size() > max_snapshot_bytes)
        return Errc::corrupt_snapshot;
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
        return std::vector<OwnedMetric>{};
    core::JsonCodec codec;
    std::vector<core::Metric> parsed;
    if (Result<void> r = codec.parse_batch(body, parsed, max_snapshot_bytes); !r) {
        if (r.error() == Errc::empty_batch)  // "[]": what an empty store writes
            return std::vector<OwnedMetric>{};
        return Errc::corrupt_snapshot;
    }
    std::vector<OwnedMetric> out;
    out.reserve(parsed.size());
    for (const core::Metric& m : parsed) {
        if (!core::validate(m))
            return Errc::corrupt_snapshot;
        out.push_back({std::string{m.id}, m.kind, m.value, m.delta});
    }
    return out;
}

SnapshotFile::SnapshotFile(std::string path)
    : path_(std::move(path)), temp_path_(path_ + ".tmp"), directory_(directory_of(path_))
{
}

Result<void> SnapshotFile::write(std::span<const OwnedMetric> metrics)
{
    fmt::memory_buffer body;
    core::write_json(body, metrics);

    std::lock_guard lock{write_mutex_};
    {
        Fd file{::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
        if (!file.ok())
            return fail_write("cannot create", temp_path_);
        const bool written = write_all(file.get(), body.data(), body.size()) && ::fsync(file.get()) == 0;
        if (!written || file.close() != 0) {
            const Errc e = fail_write("cannot write", temp_path_);
            ::unlink(temp_path_.c_str());
            return e;
        }
    }
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
        const Errc e = fail_write("cannot rename over", path_);
        ::unlink(temp_path_.c_str());
        return e;
    }
    // The rename is durable only once the directory entry is: without this a crash may bring
    // back the old file (or none) although the caller was told the snapshot is on disk.
    Fd dir{::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!dir.ok() || ::fsync(dir.get()) != 0)
        return fail_write("cannot sync directory", directory_);
    return {};
}

Result<std::vector<OwnedMetric>> SnapshotFile::load() const
{
    Fd file{::open(path_.c_str(), O_RDONLY | O_CLOEXEC)};
    if (!file.ok()) {
        if (errno == ENOENT)
            return std::vector<OwnedMetric>{};
        return fail_load(std::strerror(errno), path_);
    }
    struct stat st {};
    if (::fstat(file.get(), &st) != 0)
        return fail_load(std::strerror(errno), path_);
    if (!S_ISREG(st.st_mode))
        return fail_load("not a regular file", path_);
    if (static_cast<std::size_t>(st.st_size) > max_snapshot_bytes)
        return fail_load(fmt::format("larger than {} bytes", max_snapshot_bytes), path_);

    // Read to the end rather than trusting st_size (the file may change under us), bounded.
    std::string body(static_cast<std::size_t>(st.st_size) + 1, '\0');
    std::size_t used = 0;
    for (;;) {
        if (used == body.size()) {
            if (body.size() > max_snapshot_bytes)
                return fail_load(fmt::format("larger than {} bytes", max_snapshot_bytes), path_);
            body.resize(std::min(2 * body.size(), max_snapshot_bytes + 1));
        }
        const ssize_t n = ::read(file.get(), body.data() + used, body.size() - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail_load(std::strerror(errno), path_);
        }
        if (n == 0)
            break;
        used += static_cast<std::size_t>(n);
    }
    body.resize(used);

    Result<std::vector<OwnedMetric>> parsed = parse_snapshot(body);
    if (!parsed)
        return fail_load("not a valid JSON array of metrics", path_);
    return parsed;
}

}  // namespace storage
