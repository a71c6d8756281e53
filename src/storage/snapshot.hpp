#pragma once

#include "core/metric.hpp"
#include "core/result.hpp"

#include <fmt/format.h>

#include <cstddef>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace storage {

/// Larger snapshot files are refused (Errc::corrupt_snapshot) rather than read: loading one
/// needs about twice its size in memory. A million metrics take about 60 MB.
constexpr std::size_t max_snapshot_bytes = std::size_t{1} << 30;

/// Parses the body of a snapshot file: the JSON array of POST /updates/ (counters carry their
/// totals in `delta`), so an operator can read it and replay it against a server; each element
/// may also carry `updated_at` (Unix ms) and `seq` (the write-ahead-log sequence number of its
/// last change), both optional (0 when absent). Also accepted: the Go server's snapshot, one
/// object `{"gauges":{name:number},"counters":{name:integer}}`. Empty (or whitespace only) and
/// `[]` are an empty store. Anything malformed, an invalid name or value,
/// or more than max_snapshot_bytes: Errc::corrupt_snapshot. A repeated (id, kind) is kept (the
/// last one wins on restore): names that are not UTF-8 are written with U+FFFD and may collide,
/// which must not make a server unable to restart. Pure: no I/O (the fuzz target calls it).
core::Result<std::vector<core::OwnedMetric>> parse_snapshot(std::string_view body);

/// Appends `metrics` as a snapshot body: the array parse_snapshot reads, `updated_at` and `seq`
/// written when not 0.
void write_snapshot_json(fmt::memory_buffer& out, std::span<const core::OwnedMetric> metrics);

/// The snapshot file at one path. Thread-safe: writes are serialised by an internal mutex.
class SnapshotFile {
public:
    explicit SnapshotFile(std::string path);

    const std::string& path() const noexcept { return path_; }

    /// Replaces the file with `metrics` atomically and durably: writes a new temporary file
    /// beside it (created exclusively under an unpredictable name, mode 0600: see core/file.hpp),
    /// fsyncs it, renames it over the path and fsyncs the directory, so a crash at any moment
    /// leaves either the old or the new complete file. Failure: Errc::io_error (the cause is
    /// logged), the old file untouched and the temporary file removed. Blocks for the fsyncs:
    /// never call it on a server thread.
    core::Result<void> write(std::span<const core::OwnedMetric> metrics);

    /// The metrics in the file. Missing file: an empty vector. Not a regular file (a symbolic
    /// link, FIFO or directory at the path: refused without blocking), unreadable, too large,
    /// corrupt or invalid: Errc::corrupt_snapshot, with the cause in one line in `*reason` if
    /// given, else logged.
    core::Result<std::vector<core::OwnedMetric>> load(std::string* reason = nullptr) const;

private:
    std::string path_;
    std::string directory_;
    std::mutex write_mutex_;  ///< one writer at a time
};

}  // namespace storage
