#include "storage/snapshot.hpp"

#include "core/file.hpp"
#include "core/json.hpp"
#include "core/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace storage {

using core::Errc;
using core::OwnedMetric;
using core::Result;

namespace {

/// Logs the failed step with errno's reason; returns io_error for the caller to pass on.
Errc fail_write(std::string_view step, const std::string& path)
{
    core::log::error("snapshot: {} {}: {}", step, path, std::strerror(errno));
    return Errc::io_error;
}

/// Hands `why` to the caller when it asked for it, or logs it.
Errc fail_load(std::string_view why, const std::string& path, std::string* reason)
{
    if (reason != nullptr)
        *reason = std::string{why};
    else
        core::log::error("snapshot: cannot load {}: {}", path, why);
    return Errc::corrupt_snapshot;
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
    : path_(std::move(path)), directory_(core::file::directory_of(path_))
{
}

Result<void> SnapshotFile::write(std::span<const OwnedMetric> metrics)
{
    fmt::memory_buffer body;
    core::write_json(body, metrics);

    std::lock_guard lock{write_mutex_};
    core::file::TempFile temp = core::file::create_temp_beside(path_);
    if (!temp.file) {
        core::log::error("snapshot: cannot create a temporary file beside {}: {}", path_, temp.file.error);
        return Errc::io_error;
    }
    const bool written = core::file::write_all(temp.file.fd.get(), {body.data(), body.size()}) &&
                         ::fsync(temp.file.fd.get()) == 0;
    if (!written || temp.file.fd.close() != 0) {
        const Errc e = fail_write("cannot write", temp.path);
        ::unlink(temp.path.c_str());
        return e;
    }
    if (::rename(temp.path.c_str(), path_.c_str()) != 0) {
        const Errc e = fail_write("cannot rename over", path_);
        ::unlink(temp.path.c_str());
        return e;
    }
    // The rename is durable only once the directory entry is: without this a crash may bring
    // back the old file (or none) although the caller was told the snapshot is on disk.
    if (!core::file::sync_directory(directory_))
        return fail_write("cannot sync directory", directory_);
    return {};
}

Result<std::vector<OwnedMetric>> SnapshotFile::load(std::string* reason) const
{
    core::file::Opened file = core::file::open_regular_for_read(path_);
    if (!file) {
        if (file.missing)
            return std::vector<OwnedMetric>{};
        return fail_load(file.error, path_, reason);
    }
    struct stat st {};
    if (::fstat(file.fd.get(), &st) != 0)
        return fail_load(std::strerror(errno), path_, reason);
    if (static_cast<std::size_t>(st.st_size) > max_snapshot_bytes)
        return fail_load(fmt::format("larger than {} bytes", max_snapshot_bytes), path_, reason);

    // Read to the end rather than trusting st_size (the file may change under us), bounded.
    std::string body(static_cast<std::size_t>(st.st_size) + 1, '\0');
    std::size_t used = 0;
    for (;;) {
        if (used == body.size()) {
            if (body.size() > max_snapshot_bytes)
                return fail_load(fmt::format("larger than {} bytes", max_snapshot_bytes), path_, reason);
            body.resize(std::min(2 * body.size(), max_snapshot_bytes + 1));
        }
        const ssize_t n = ::read(file.fd.get(), body.data() + used, body.size() - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail_load(std::strerror(errno), path_, reason);
        }
        if (n == 0)
            break;
        used += static_cast<std::size_t>(n);
    }
    body.resize(used);

    Result<std::vector<OwnedMetric>> parsed = parse_snapshot(body);
    if (!parsed)
        return fail_load("not a valid JSON array of metrics", path_, reason);
    return parsed;
}

}  // namespace storage
