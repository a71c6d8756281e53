#pragma once

// The write-ahead log of a durable memory store: a directory `<file>.wal/` of segment files,
// each named by the sequence number of its first record, each a run of records:
//
//   crc32 u32 | length u32 | type u8 | seq u64 | time i64 | payload (length bytes)
//
// little-endian; the CRC (libdeflate's crc32) covers everything after itself. A record is one
// change (a gauge set or counter delta, a batch, a removal, an expiry) with its sequence number and wall
// clock time; a batch of n elements takes the n numbers seq .. seq + n - 1. Reading stops at the
// first record that is short (a torn write), fails its CRC or its bounds (corruption), or whose
// seq does not follow its predecessor's; recovery cuts the log there. Anchors: LevelDB's log
// format (CRC per record), Redis AOF (operations, fsync policies), Prometheus TSDB WAL
// (numbered segments dropped after a checkpoint).

#include "core/file.hpp"
#include "core/metric.hpp"
#include "core/result.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace storage::wal {

enum class RecordType : std::uint8_t {
    update = 1,  ///< one metric: a gauge's new value or a counter's delta
    batch = 2,   ///< several updates applied atomically and in order
    remove = 3,  ///< deletion of one metric by a request
    expire = 4,  ///< the expiry sweep's deletion: only if the metric is expired at the record's time
};

constexpr std::size_t header_bytes = 4 + 4 + 1 + 8 + 8;
/// Larger payloads are corruption (a batch of this size is far beyond any request's limit).
constexpr std::size_t max_payload_bytes = std::size_t{64} << 20;

/// One decoded record. Metric ids view the bytes it was read from.
struct Record {
    RecordType type = RecordType::update;
    std::uint64_t seq = 0;
    std::int64_t time = 0;  ///< Unix milliseconds
    std::vector<core::Metric> metrics;  ///< batch: its elements; else one (remove, expire: kind and id)

    /// How many sequence numbers the record takes.
    std::uint64_t span() const noexcept { return type == RecordType::batch ? metrics.size() : 1; }
};

/// Appends one encoded record to `out`. `metrics` holds one metric unless `type` is batch (at
/// least one); ids are valid names (at most core::max_name_bytes). Throws std::length_error when
/// the payload would exceed max_payload_bytes (callers bound batches far below it).
void encode(std::string& out, RecordType type, std::uint64_t seq, std::int64_t time,
            std::span<const core::Metric> metrics);

enum class ReadStatus {
    record,   ///< `out` holds the next record
    end,      ///< clean end of the bytes
    torn,     ///< the rest is shorter than a record: an interrupted write
    corrupt,  ///< a bad CRC, length, type or payload
    gap,      ///< a valid record whose seq does not follow
};
std::string_view to_string(ReadStatus s) noexcept;

/// Reads records from a segment's bytes (sans I/O). Every length is bounded before it is used.
class RecordReader {
public:
    /// `first_seq`: the seq the first record must carry (the segment's name).
    RecordReader(std::string_view bytes, std::uint64_t first_seq) noexcept;

    ReadStatus next(Record& out);
    /// Offset just past the last good record: where a bad tail is cut.
    std::size_t good_end() const noexcept { return offset_; }
    /// The seq the next record must carry.
    std::uint64_t next_seq() const noexcept { return next_seq_; }

private:
    std::string_view bytes_;
    std::size_t offset_ = 0;
    std::uint64_t next_seq_;
};

/// How the log reaches the disk; tests replace these to inject failures and count syncs.
struct FileOps {
    bool (*write_all)(int fd, std::string_view data) noexcept = &core::file::write_all;
    int (*fdatasync)(int fd) = nullptr;  ///< nullptr: ::fdatasync
};

/// What recovery found.
struct Recovery {
    std::size_t segments = 0;
    std::size_t records = 0;
    std::uint64_t next_seq = 1;  ///< the seq after the last good record (1: none)
    std::string cut;             ///< empty, or where and why the log was cut (for the log line)
};

/// The segment files of one log directory. Not thread-safe: the owner serialises every call
/// with its own mutex (the durable store's sequencer), except sync_data, which only the
/// Committer thread calls, without the mutex, on a SyncPoint taken under it.
class Log {
public:
    /// Opens `dir` (created with mode 0700 if missing), reads every segment in seq order and
    /// hands each good record to `replay` (its ids view a buffer valid during the call). A
    /// bad tail is cut (the segment truncated there); later segments, which can no longer
    /// follow, are renamed `<name>.broken` for the operator. Errors (not a directory, unreadable,
    /// a segment over max_segment_read_bytes): the reason in `error`.
    static std::unique_ptr<Log> open(const std::string& dir, const std::function<void(const Record&)>& replay,
                                     Recovery& recovery, std::string& error, FileOps ops = {});

    /// Opens a segment for appending: continues the last one when `next_seq` follows it, else
    /// (the store's state is ahead of the log: its snapshot holds every change the log has)
    /// deletes the segments and starts a new one named `next_seq`. Failure: Errc::io_error.
    core::Result<void> start(std::uint64_t next_seq);

    /// Appends encoded records that take the seqs from next_seq() up to `next_seq` (exclusive).
    /// Failure: the segment is truncated back to its last good end, Errc::io_error, unhealthy.
    core::Result<void> append(std::string_view records, std::uint64_t next_seq);
    /// The seq the next appended record must carry.
    std::uint64_t next_seq() const noexcept { return next_seq_; }
    /// Records appended since the last successful sync.
    bool unsynced() const noexcept { return written_end_ != synced_end_; }

    struct SyncPoint {
        int fd = -1;
        std::uint64_t end = 0;
        std::uint64_t next_seq = 0;
    };
    SyncPoint sync_point() const noexcept { return {fd_.get(), written_end_, next_seq_}; }
    /// fdatasync; true on success. Without the owner's mutex: appends go on meanwhile.
    bool sync_data(const SyncPoint& point) noexcept;
    /// After sync_data. Success: everything up to the point is durable; answers the seq below
    /// which every record is. Failure with `rollback`: the segment is truncated back to the last
    /// synced end (and synced), next_seq() goes back to its seq, Errc::io_error. Failure without
    /// it (records already applied, to be synced later): Errc::io_error, nothing cut.
    core::Result<std::uint64_t> finish_sync(const SyncPoint& point, bool ok, bool rollback);
    /// The seq below which every record is durable.
    std::uint64_t synced_seq() const noexcept { return synced_next_seq_; }

    /// Syncs the current segment and starts a new one named next_seq(); answers that seq. Every
    /// segment before it may be dropped once a snapshot holds the changes up to it.
    core::Result<std::uint64_t> rotate();
    /// Deletes the segments named below `first_seq` (oldest first, so that what is left always
    /// follows on), and syncs the directory.
    void drop_before(std::uint64_t first_seq);

    /// Bytes in all segments.
    std::uint64_t bytes() const noexcept { return older_bytes_ + written_end_; }
    /// The last append and the last sync succeeded, and no partial record is left.
    bool healthy() const noexcept { return write_ok_ && sync_ok_ && !dirty_; }
    std::uint64_t syncs() const noexcept { return syncs_; }
    const std::string& dir() const noexcept { return dir_; }
    /// The segments on disk, oldest first (their first seqs).
    std::vector<std::uint64_t> segments() const;

private:
    Log(std::string dir, FileOps ops);
    std::string segment_path(std::uint64_t first_seq) const;
    core::Result<void> open_segment(std::uint64_t first_seq, std::uint64_t size);
    bool truncate_to(std::uint64_t end);
    int do_sync(int fd) noexcept;

    std::string dir_;
    FileOps ops_;
    core::file::Fd fd_;
    std::uint64_t segment_ = 0;       ///< first seq of the open segment
    std::uint64_t written_end_ = 0;   ///< end of the last good record in it
    std::uint64_t synced_end_ = 0;
    std::uint64_t next_seq_ = 1;
    std::uint64_t synced_next_seq_ = 1;
    std::uint64_t older_bytes_ = 0;   ///< bytes of the segments before the open one
    std::vector<std::pair<std::uint64_t, std::uint64_t>> older_;  ///< (first seq, bytes)
    bool dirty_ = false;              ///< a failed truncation left bytes past written_end_
    bool write_ok_ = true;
    bool sync_ok_ = true;
    std::uint64_t syncs_ = 0;
};

/// The log's writer thread: syncs what was appended (group commit: every record appended while
/// one fdatasync runs shares the next) and rotates segments on request.
class Committer {
public:
    /// Runs on the thread with `mutex` held, after each sync: the seq below which everything
    /// is durable, or Errc::io_error (with `interval` 0 the unsynced records were cut).
    using OnSync = std::function<void(core::Result<std::uint64_t>)>;

    /// `log` and `mutex` (the owner's, guarding `log`) must outlive this object. `interval` 0:
    /// sync as soon as anything is appended (the appender calls wake()), cut on failure; else
    /// sync at least every `interval`. Starts the thread.
    Committer(Log& log, std::mutex& mutex, std::chrono::milliseconds interval, OnSync on_sync);
    /// stop().
    ~Committer();
    Committer(const Committer&) = delete;
    Committer& operator=(const Committer&) = delete;

    /// After an append, with the mutex held.
    void wake() { wake_.notify_one(); }
    /// Syncs everything appended, then rotates (Log::rotate) on the thread; blocks the caller
    /// (not holding the mutex) until done.
    core::Result<std::uint64_t> rotate();
    /// A final sync, then the thread ends. Idempotent; do not hold the mutex.
    void stop();

private:
    void run();
    void sync_once(std::unique_lock<std::mutex>& lock);
    void rotate_now();

    Log& log_;
    std::mutex& mutex_;
    const std::chrono::milliseconds interval_;
    OnSync on_sync_;
    std::condition_variable wake_;  ///< waits on the owner's mutex
    std::condition_variable rotated_;
    bool stop_ = false;
    std::uint64_t rotations_requested_ = 0;
    std::uint64_t rotations_done_ = 0;
    core::Result<std::uint64_t> rotation_{std::uint64_t{0}};
    std::mutex join_mutex_;
    std::thread thread_;
};

}  // namespace storage::wal
