#pragma once

#include "storage/memory.hpp"
#include "storage/snapshot.hpp"
#include "storage/storage.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace storage {

/// MemoryStorage plus snapshots to a SnapshotFile (STORE_INTERVAL).
///
/// All file work runs on one dedicated writer thread owned by this object, never on a server
/// thread: fsync may take tens of milliseconds and must not stall other connections. A thread
/// rather than a pool because writes are serial by nature (one file) and a blocked thread is
/// the honest model of a blocking fsync.
///
/// - interval > 0: every interval the writer takes a snapshot if anything changed since the last
///   one (a generation counter bumped by every successful update). Updates return at once.
/// - interval <= 0 (synchronous): apply()/apply_batch() complete only once a snapshot holding
///   the update is durable. Group commit: each update takes a generation number and waits for
///   "durable generation >= mine"; the writer reads the current generation G, lists the store,
///   writes and fsyncs, then completes every waiter with a generation <= G, each on its own
///   executor. Concurrent updates therefore share one write. A failed write completes its
///   waiters with Errc::io_error (the update stays in memory; the cause is logged).
///
/// Reads (get, list) go straight to memory. Thread-safe.
class PersistentStorage final : public Storage {
public:
    /// `memory` and `file` must outlive this object. `executor` runs completions whose handler
    /// has no executor of its own (coroutines always have one). Starts the writer thread.
    PersistentStorage(asio::any_io_executor executor, MemoryStorage& memory, SnapshotFile& file,
                      std::chrono::milliseconds interval);
    /// Stops like close() (final snapshot) if close() was not awaited, and joins the writer.
    ~PersistentStorage() override;
    PersistentStorage(const PersistentStorage&) = delete;
    PersistentStorage& operator=(const PersistentStorage&) = delete;

    /// Loads `file` into `memory`, replacing its content (start-up with RESTORE); returns how
    /// many metrics were loaded. A missing file loads nothing; a bad one: Errc::corrupt_snapshot.
    static Result<std::size_t> restore(MemoryStorage& memory, const SnapshotFile& file);

    std::optional<Result<Metric>> try_now(const Request& request) override;
    core::awaitable<Result<Metric>> run(Request request) override;
    core::awaitable<Result<Metric>> apply(Metric update);
    core::awaitable<Result<void>> apply_batch(std::span<const Metric> batch, std::vector<Metric>& stored);
    core::awaitable<Result<Metric>> get(Kind kind, std::string_view id);
    /// At once with snapshots on an interval; std::nullopt when every update waits for its snapshot.
    std::optional<Result<Metric>> apply_now(const Metric& update);
    std::optional<Result<Metric>> get_now(Kind kind, std::string_view id);
    std::optional<Result<void>> apply_batch_now(std::span<const Metric> batch, std::vector<Metric>& stored);
    bool answers_now() const override { return !synchronous(); }
    core::awaitable<Result<std::vector<OwnedMetric>>> list() override;
    core::awaitable<bool> ping() override;
    /// Stops the periodic snapshots, writes a final snapshot (always, even if nothing changed:
    /// the file then shows the state at stop) and joins the writer thread. Idempotent. An update
    /// that needs durability after this: Errc::storage_unavailable.
    core::awaitable<void> close() override;

    /// Snapshot writes attempted so far (tests observe group commit through it).
    std::uint64_t writes() const noexcept { return writes_.load(); }

private:
    /// A type-erased completion handler; calling it posts the handler to its executor.
    class Completion {
    public:
        virtual ~Completion() = default;
        virtual void operator()(Errc e) = 0;
    };
    template <class Handler>
    class PostedCompletion;
    struct Waiter {
        std::uint64_t generation;
        std::unique_ptr<Completion> done;
    };

    bool synchronous() const noexcept { return interval_.count() <= 0; }
    /// Completes once a snapshot holding `generation` is durable (or failed: its Errc).
    core::awaitable<Errc> durable(std::uint64_t generation);
    /// After a successful memory change: counts it and, when synchronous, waits for the snapshot.
    core::awaitable<Errc> settle();
    template <class Handler>
    std::unique_ptr<Completion> make_completion(Handler handler);
    void wait_durable(std::uint64_t generation, std::unique_ptr<Completion> done);
    void wait_closed(std::unique_ptr<Completion> done);
    void run_writer();
    Errc write_snapshot();
    void stop_and_join();

    asio::any_io_executor executor_;
    MemoryStorage& memory_;
    SnapshotFile& file_;
    const std::chrono::milliseconds interval_;

    std::atomic<std::uint64_t> generation_{0};  ///< successful updates so far
    std::atomic<std::uint64_t> writes_{0};

    std::mutex mutex_;  ///< guards what follows, up to the thread
    std::condition_variable wake_;
    std::uint64_t written_ = 0;  ///< generation of the newest durable snapshot
    bool stop_ = false;
    bool finished_ = false;  ///< the writer has written the final snapshot and is exiting
    std::vector<Waiter> waiters_;
    std::vector<std::unique_ptr<Completion>> closers_;

    std::mutex join_mutex_;  ///< close() and the destructor may both join
    std::thread writer_;
};

}  // namespace storage
