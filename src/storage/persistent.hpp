#pragma once

#include "storage/memory_map.hpp"
#include "storage/snapshot.hpp"
#include "storage/storage.hpp"
#include "storage/wal.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace storage {

/// The steps of a compaction, in order; a test hook may stop one (by throwing) to stand for a
/// crash there.
enum class CompactionStep {
    rotated,           ///< a new segment is open; the snapshot will hold every change before it
    listed,            ///< the map is listed; nothing is written yet
    snapshot_written,  ///< the snapshot file is replaced; the old segments are still there
    dropped,           ///< the old segments are deleted
};

struct DurableOptions {
    /// 0: an update is answered once an fdatasync covers its record (group commit); N > 0: once
    /// its record is written, fdatasynced at least every N (Redis `appendfsync everysec`).
    std::chrono::milliseconds interval{300'000};
    /// Load the snapshot and replay the log at start (RESTORE); false: start empty, deleting
    /// the log's segments.
    bool restore = true;
    /// Compact after this long, or once the log holds this many bytes.
    std::chrono::milliseconds compact_every{60'000};
    std::uint64_t compact_bytes = std::uint64_t{64} << 20;
    /// Expiry sweep (when the map has a ttl): one step, at most this many slots visited, every
    /// sweep_every.
    std::size_t sweep_budget = 16384;
    std::chrono::milliseconds sweep_every{1000};
    /// Tests: the log's file operations, and a hook called after each compaction step.
    wal::FileOps file_ops{};
    std::function<void(CompactionStep)> compaction_hook{};
};

/// A MemoryMap made durable by a write-ahead log (`<file>.wal/`) and snapshots (`<file>`).
///
/// Every change (update, batch, removal, expiry removal) goes through one mutex, the sequencer:
/// it takes the change's sequence number (a batch takes one per element), appends its record to
/// the log, and applies it to the map with that seq and the wall-clock time, in seq order, so
/// that replaying the log reproduces the map exactly (counter overflow refusals included).
/// - interval > 0: the record is written (write(2), in the page cache: a killed process loses
///   nothing) before the change is applied and answered; the log's writer thread fdatasyncs at
///   least every interval. try_now answers every request.
/// - interval 0: the change is applied and answered only once an fdatasync covers its record;
///   records appended while one fdatasync runs share the next (group commit, on the writer
///   thread, which then applies them in seq order and completes each waiter on its executor).
///   Reads never see a change that is not durable.
/// A record that cannot be written or synced is never applied: the answer is Errc::io_error,
/// and the log is cut back so that no trace of it stays.
///
/// Compaction (every compact_every, once the log passes compact_bytes, and at close), on a
/// background thread: rotate to a new segment, list the map (each entry with the seq of its
/// last change), write the snapshot atomically, delete the segments before the rotation.
/// Restart loads the snapshot and replays every remaining segment with the replay rule (a
/// record whose seq the entry already holds is skipped), so a crash at any step never applies
/// a counter delta twice nor loses one.
///
/// Thread-safe.
class PersistentStorage final : public Storage {
public:
    /// Restores (snapshot, then log), opens the log for appending and starts the writer and
    /// compaction threads. `map` (empty) and `file` must outlive this object; `executor` runs
    /// completions whose handler has none. Failure: the reason in `error`, nullptr.
    static std::unique_ptr<PersistentStorage> open(asio::any_io_executor executor, MemoryMap& map,
                                                   SnapshotFile& file, DurableOptions options, std::string& error);
    /// Stops like close() if close() was not awaited.
    ~PersistentStorage() override;
    PersistentStorage(const PersistentStorage&) = delete;
    PersistentStorage& operator=(const PersistentStorage&) = delete;

    std::optional<Result<Metric>> try_now(const Request& request) override;
    bool answers_now() const override { return !synchronous(); }
    core::awaitable<Result<Metric>> run(Request request) override;
    core::awaitable<Result<std::vector<OwnedMetric>>> list() override;
    /// False while the log cannot be written or synced.
    core::awaitable<bool> ping() override;
    /// Stops the sweep and the periodic compaction, compacts a last time, syncs and stops the
    /// writer. Idempotent. A change after it: Errc::storage_unavailable.
    core::awaitable<void> close() override;
    void write_self_metrics(core::Exposition& out) const override;

    /// One compaction, blocking (the compaction thread's work; tests call it directly).
    /// Failure: Errc::io_error (logged), the log kept whole.
    Result<void> compact();
    /// What restart found: metrics from the snapshot, records replayed, where the log was cut.
    struct Restored {
        std::size_t snapshot_metrics = 0;
        wal::Recovery log;
    };
    const Restored& restored() const noexcept { return restored_; }
    /// fdatasyncs of the log so far (group commit shows as fewer syncs than updates).
    std::uint64_t syncs() const;
    /// Interval 0: changes written to the log and waiting for their sync.
    std::size_t pending_records() const;
    /// Metrics removed on request, and by expiry, since start.
    std::uint64_t removed() const { return map_.removed(); }
    std::uint64_t expired() const { return map_.expired(); }

    /// Tests: stops every thread without the final compaction or sync, as a crash would (the
    /// records written so far stay in the files). The object is unusable afterwards.
    void abandon();

private:
    struct Waiter;
    class Completion;
    template <class Handler>
    class PostedCompletion;

    PersistentStorage(asio::any_io_executor executor, MemoryMap& map, SnapshotFile& file, DurableOptions options);
    bool synchronous() const noexcept { return options_.interval.count() <= 0; }
    Result<void> restore(std::string& error);
    /// Encodes `request`'s change; false if it is not a change (a get).
    static bool encode(const Request& request, std::uint64_t seq, std::int64_t time, std::string& out);
    static std::uint64_t span_of(const Request& request) noexcept;
    /// Applies a change to the map with its stamp (live, or replayed from the log).
    Result<Metric> apply(const Request& request, Stamp stamp);
    static void replay(MemoryMap& map, const wal::Record& record);
    /// With the sequencer held: a removal of a metric that is not there (nothing to log).
    bool surely_absent(const Request& request) const;
    /// With the sequencer held, before anything is logged: Errc::too_many_metrics when the
    /// request's new names (`adds`) could pass the map's cap, counting those of records waiting
    /// for their sync. A refusal is never logged, so replay (with the cap lifted) cannot differ.
    Result<void> admit(const Request& request, std::size_t& adds);
    /// With the sequencer held: seq, record, append; interval > 0 also applies.
    Result<Metric> write_and_apply(const Request& request, std::unique_lock<std::mutex>& lock);
    /// The writer thread's report after each sync (sequencer held).
    void on_sync(Result<std::uint64_t> synced);
    void run_background();
    void sweep_step(std::size_t& cursor);
    void expire_one(Kind kind, const std::string& id);
    void stop_threads(bool final_compaction);
    /// Counts an append's outcome for the self-metrics and passes it on.
    bool counted(Result<void> appended) noexcept;
    template <class Handler>
    void enqueue(Request request, std::optional<Result<Metric>>* result, Handler handler);

    asio::any_io_executor executor_;
    MemoryMap& map_;
    SnapshotFile& file_;
    DurableOptions options_;
    Restored restored_;

    mutable std::mutex sequencer_;  ///< guards the log, what follows, and the order of changes
    std::unique_ptr<wal::Log> log_;
    std::string record_;                    ///< encoding buffer, reused
    std::uint64_t first_seq_ = 1;           ///< the first seq of this run
    std::vector<std::unique_ptr<Waiter>> pending_;  ///< interval 0: written, not yet synced, in seq order
    std::size_t pending_adds_ = 0;                  ///< the sum of pending_'s Waiter::adds
    bool closed_ = false;

    std::unique_ptr<wal::Committer> committer_;

    /// Figures for the self-metrics.
    struct Stats {
        std::atomic<std::uint64_t> records{0};
        std::atomic<std::uint64_t> append_failures{0};
        std::atomic<std::uint64_t> sync_failures{0};
        std::atomic<std::uint64_t> snapshots{0};
        std::atomic<std::uint64_t> snapshot_failures{0};
        std::atomic<std::int64_t> last_snapshot_ms{0};
    };
    Stats stats_;

    std::mutex background_mutex_;  ///< guards stop_background_ and the wake-ups of run_background
    std::condition_variable background_wake_;
    bool stop_background_ = false;
    std::atomic<bool> compact_soon_{false};
    std::thread background_;
    std::mutex compact_mutex_;  ///< one compaction at a time
    std::mutex stop_mutex_;     ///< close(), abandon() and the destructor may race
    bool stopped_ = false;
    std::thread closer_;        ///< runs close()'s stop off the server thread
};

}  // namespace storage
