#include "storage/persistent.hpp"

#include "core/log.hpp"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <utility>

namespace storage {

/// A completion without arguments; calling it posts the handler to its executor.
class PersistentStorage::Completion {
public:
    virtual ~Completion() = default;
    virtual void operator()() = 0;
};

/// Owns a completion handler and keeps its executor's work count up (an io_context waiting only
/// for a sync must not run out of work); calling it posts the handler there: the writer thread
/// never runs request code.
template <class Handler>
class PersistentStorage::PostedCompletion final : public Completion {
public:
    PostedCompletion(Handler handler, const asio::any_io_executor& fallback)
        : handler_(std::move(handler)),
          work_(asio::prefer(asio::get_associated_executor(handler_, fallback),
                             asio::execution::outstanding_work.tracked))
    {
    }

    void operator()() override
    {
        asio::post(work_, [handler = std::move(handler_)]() mutable { std::move(handler)(); });
    }

private:
    Handler handler_;
    asio::any_io_executor work_;
};

/// A change written to the log and waiting for the sync that makes it durable (interval 0).
struct PersistentStorage::Waiter {
    Request request;            ///< ids view the waiting request's buffer, or `owned_id`
    std::string owned_id;       ///< an expiry's name (no request buffer behind it)
    bool expiry = false;
    std::size_t adds = 0;  ///< new names counted against the cap until it is applied
    Stamp stamp;
    std::optional<Result<Metric>>* result = nullptr;  ///< in the waiting coroutine's frame; null: nobody waits
    std::unique_ptr<Completion> done;

    void complete(Result<Metric> r)
    {
        if (result != nullptr)
            *result = std::move(r);
        if (done)
            (*done)();
    }
};

namespace {

Result<Metric> as_metric(Result<void> r)
{
    if (!r)
        return r.error();
    return Metric{};
}

}  // namespace

PersistentStorage::PersistentStorage(asio::any_io_executor executor, MemoryMap& map, SnapshotFile& file,
                                     DurableOptions options)
    : executor_(std::move(executor)), map_(map), file_(file), options_(std::move(options))
{
}

std::unique_ptr<PersistentStorage> PersistentStorage::open(asio::any_io_executor executor, MemoryMap& map,
                                                           SnapshotFile& file, DurableOptions options,
                                                           std::string& error)
{
    std::unique_ptr<PersistentStorage> store{new PersistentStorage{std::move(executor), map, file, std::move(options)}};
    if (!store->restore(error))
        return nullptr;
    store->committer_ = std::make_unique<wal::Committer>(
        *store->log_, store->sequencer_, store->options_.interval,
        [s = store.get()](Result<std::uint64_t> synced) { s->on_sync(synced); });
    store->background_ = std::thread{[s = store.get()] { s->run_background(); }};
    return store;
}

PersistentStorage::~PersistentStorage()
{
    stop_threads(true);
    if (closer_.joinable())
        closer_.join();
}

Result<void> PersistentStorage::restore(std::string& error)
{
    // What was stored comes back whatever the cap is now; a lower cap refuses only new names.
    struct LiftCap {
        MemoryMap& map;
        std::size_t cap;
        explicit LiftCap(MemoryMap& m) : map(m), cap(m.max_metrics()) { map.set_max_metrics(0); }
        ~LiftCap() { map.set_max_metrics(cap); }
        LiftCap(const LiftCap&) = delete;
        LiftCap& operator=(const LiftCap&) = delete;
    } lifted{map_};
    if (options_.restore) {
        std::string reason;
        Result<std::vector<OwnedMetric>> loaded = file_.load(&reason);
        if (!loaded) {
            error = "cannot restore " + file_.path() + ": " + reason;
            return loaded.error();
        }
        map_.restore(*loaded);
        restored_.snapshot_metrics = loaded->size();
    }
    MemoryMap& map = map_;
    const bool replaying = options_.restore;
    log_ = wal::Log::open(
        file_.path() + ".wal",
        [&map, replaying](const wal::Record& r) {
            if (replaying)
                replay(map, r);
        },
        restored_.log, error, options_.file_ops);
    if (!log_)
        return Errc::io_error;
    if (!restored_.log.cut.empty())
        core::log::error("write-ahead log: {}", restored_.log.cut);
    if (!replaying) {
        // Starting empty: the old changes must not come back at the next restart.
        log_->drop_before(UINT64_MAX);
        if (Result<void> r = file_.write({}); !r) {
            error = "cannot write an empty snapshot to " + file_.path();
            return r;
        }
    }
    // Above every seq the map holds: a snapshot may hold changes whose segments are gone.
    const std::uint64_t next = std::max(restored_.log.next_seq, map_.max_seq() + 1);
    if (Result<void> r = log_->start(next); !r) {
        error = "cannot open the write-ahead log in " + log_->dir();
        return r;
    }
    first_seq_ = next;
    return {};
}

std::uint64_t PersistentStorage::span_of(const Request& request) noexcept
{
    return request.op == Op::update_batch ? request.batch.size() : 1;
}

bool PersistentStorage::encode(const Request& request, std::uint64_t seq, std::int64_t time, std::string& out)
{
    switch (request.op) {
    case Op::update:
        wal::encode(out, wal::RecordType::update, seq, time, {&request.metric, 1});
        return true;
    case Op::update_batch:
        wal::encode(out, wal::RecordType::batch, seq, time, request.batch);
        return true;
    case Op::remove:
        wal::encode(out, wal::RecordType::remove, seq, time, {&request.metric, 1});
        return true;
    case Op::get:
        return false;
    }
    return false;
}

Result<Metric> PersistentStorage::apply(const Request& request, Stamp stamp)
{
    switch (request.op) {
    case Op::update:
        return map_.update(request.metric, stamp);
    case Op::update_batch:
        return as_metric(map_.update_batch(request.batch, request.stored, stamp));
    case Op::remove:
        return map_.remove(request.metric.kind, request.metric.id, stamp);
    case Op::get:
        return map_.get(request.metric.kind, request.metric.id);
    }
    return Errc::storage_unavailable;
}

void PersistentStorage::replay(MemoryMap& map, const wal::Record& record)
{
    const Stamp stamp{record.seq, record.time};
    const Metric& first = record.metrics.front();
    // Refusals (a counter overflow) are replayed as they happened: nothing to report.
    switch (record.type) {
    case wal::RecordType::update:
        (void)map.update(first, stamp);
        break;
    case wal::RecordType::batch:
        (void)map.update_batch(record.metrics, nullptr, stamp);
        break;
    case wal::RecordType::remove:
        (void)map.remove(first.kind, first.id, stamp);
        break;
    case wal::RecordType::expire:
        (void)map.expire(first.kind, first.id, stamp);
        break;
    }
}

bool PersistentStorage::surely_absent(const Request& request) const
{
    // With nothing waiting for a sync the map holds every logged change: a removal of a metric
    // it does not have would change nothing, and is not worth a record.
    return request.op == Op::remove && pending_.empty() && !map_.get(request.metric.kind, request.metric.id);
}

Result<void> PersistentStorage::admit(const Request& request, std::size_t& adds)
{
    adds = 0;
    const std::size_t cap = map_.max_metrics();
    if (cap == 0 || (request.op != Op::update && request.op != Op::update_batch))
        return {};
    adds = map_.new_names(request.op == Op::update ? std::span<const Metric>{&request.metric, 1} : request.batch);
    if (adds == 0 || (adds <= cap && map_.count() + pending_adds_ <= cap - adds))
        return {};
    map_.note_refused();
    return Errc::too_many_metrics;
}

Result<Metric> PersistentStorage::write_and_apply(const Request& request, std::unique_lock<std::mutex>&)
{
    if (closed_)
        return Errc::storage_unavailable;
    if (surely_absent(request))
        return Errc::not_found;
    std::size_t adds = 0;
    if (Result<void> admitted = admit(request, adds); !admitted)
        return admitted.error();
    const std::uint64_t seq = log_->next_seq();
    const Stamp stamp{seq, map_.clock()()};
    record_.clear();
    try {
        encode(request, seq, stamp.time, record_);
    } catch (const std::length_error&) {
        return Errc::batch_too_large;
    }
    if (!counted(log_->append(record_, seq + span_of(request))))
        return Errc::io_error;
    if (log_->bytes() >= options_.compact_bytes)
        compact_soon_.store(true, std::memory_order_relaxed);
    return apply(request, stamp);
}

std::optional<Result<Metric>> PersistentStorage::try_now(const Request& request)
{
    if (request.op == Op::get)
        return map_.get(request.metric.kind, request.metric.id);
    if (request.op == Op::update_batch && request.batch.empty())
        return as_metric(map_.update_batch(request.batch, request.stored, {}));
    if (synchronous())
        return std::nullopt;
    std::unique_lock lock{sequencer_};
    return write_and_apply(request, lock);
}

template <class Handler>
void PersistentStorage::enqueue(Request request, std::optional<Result<Metric>>* result, Handler handler)
{
    auto waiter = std::make_unique<Waiter>();
    waiter->request = request;
    waiter->result = result;
    waiter->done = std::make_unique<PostedCompletion<Handler>>(std::move(handler), executor_);
    std::lock_guard lock{sequencer_};
    if (closed_) {
        waiter->complete(Errc::storage_unavailable);
        return;
    }
    if (surely_absent(request)) {
        waiter->complete(Errc::not_found);
        return;
    }
    if (Result<void> admitted = admit(request, waiter->adds); !admitted) {
        waiter->complete(admitted.error());
        return;
    }
    const std::uint64_t seq = log_->next_seq();
    waiter->stamp = {seq, map_.clock()()};
    record_.clear();
    try {
        encode(request, seq, waiter->stamp.time, record_);
    } catch (const std::length_error&) {
        waiter->complete(Errc::batch_too_large);
        return;
    }
    if (!counted(log_->append(record_, seq + span_of(request)))) {
        waiter->complete(Errc::io_error);
        return;
    }
    if (log_->bytes() >= options_.compact_bytes)
        compact_soon_.store(true, std::memory_order_relaxed);
    pending_adds_ += waiter->adds;
    pending_.push_back(std::move(waiter));
    committer_->wake();
}

core::awaitable<Result<Metric>> PersistentStorage::run(Request request)
{
    if (std::optional<Result<Metric>> now = try_now(request))
        co_return std::move(*now);
    std::optional<Result<Metric>> result;
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [this, &request, &result](auto handler) { enqueue(request, &result, std::move(handler)); },
        asio::use_awaitable);
    co_return std::move(*result);
}

void PersistentStorage::on_sync(Result<std::uint64_t> synced)
{
    if (!synced)
        stats_.sync_failures.fetch_add(1, std::memory_order_relaxed);
    if (!synchronous())
        return;  // already applied; a failed sync is retried and shows in ping()
    // In seq order: the records below `synced` are durable and are applied now; on a failure the
    // log was cut back to its last synced end, and every pending record went with it.
    std::size_t done = 0;
    for (; done < pending_.size(); ++done) {
        Waiter& w = *pending_[done];
        if (!synced || w.stamp.seq < *synced)
            pending_adds_ -= w.adds;  // applied, or refused, below: in the map's count from now on
        if (!synced) {
            w.complete(Errc::io_error);
            continue;
        }
        if (w.stamp.seq >= *synced)
            break;
        if (w.expiry)
            w.complete(map_.expire(w.request.metric.kind, w.request.metric.id, w.stamp) ? Result<Metric>{Metric{}}
                                                                                       : Result<Metric>{Errc::not_found});
        else
            w.complete(apply(w.request, w.stamp));
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
}

core::awaitable<Result<std::vector<OwnedMetric>>> PersistentStorage::list()
{
    co_return map_.list();
}

core::awaitable<bool> PersistentStorage::ping()
{
    bool healthy = false;
    {
        std::lock_guard lock{sequencer_};
        healthy = !closed_ && log_->healthy();
    }
    co_return healthy;
}

std::uint64_t PersistentStorage::syncs() const
{
    std::lock_guard lock{sequencer_};
    return log_->syncs();
}

std::size_t PersistentStorage::pending_records() const
{
    std::lock_guard lock{sequencer_};
    return pending_.size();
}

Result<void> PersistentStorage::compact()
{
    std::lock_guard one{compact_mutex_};
    const auto step = [this](CompactionStep s) {
        if (options_.compaction_hook)
            options_.compaction_hook(s);
    };
    const Result<std::uint64_t> rotated = committer_->rotate();
    if (!rotated)
        return Errc::io_error;
    step(CompactionStep::rotated);
    std::vector<OwnedMetric> all;
    try {
        all = map_.list();
    } catch (const std::bad_alloc&) {
        core::log::error("compaction: out of memory listing {} metrics", map_.size());
        return Errc::io_error;
    }
    step(CompactionStep::listed);
    if (Result<void> r = file_.write(all); !r) {
        stats_.snapshot_failures.fetch_add(1, std::memory_order_relaxed);
        return r;
    }
    stats_.snapshots.fetch_add(1, std::memory_order_relaxed);
    stats_.last_snapshot_ms.store(core::unix_millis(), std::memory_order_relaxed);
    step(CompactionStep::snapshot_written);
    {
        std::lock_guard lock{sequencer_};
        log_->drop_before(*rotated);
    }
    step(CompactionStep::dropped);
    return {};
}

void PersistentStorage::expire_one(Kind kind, const std::string& id)
{
    std::lock_guard lock{sequencer_};
    if (closed_)
        return;
    const std::uint64_t seq = log_->next_seq();
    const Stamp stamp{seq, map_.clock()()};
    const Metric target{id, kind, 0, 0};
    record_.clear();
    wal::encode(record_, wal::RecordType::expire, seq, stamp.time, {&target, 1});
    if (!counted(log_->append(record_, seq + 1)))
        return;  // logged by the log; the next sweep tries again
    if (!synchronous()) {
        (void)map_.expire(kind, id, stamp);
        return;
    }
    auto waiter = std::make_unique<Waiter>();
    waiter->owned_id = id;
    waiter->request.metric = Metric{waiter->owned_id, kind, 0, 0};
    waiter->expiry = true;
    waiter->stamp = stamp;
    pending_adds_ += waiter->adds;
    pending_.push_back(std::move(waiter));
    committer_->wake();
}

void PersistentStorage::sweep_step(std::size_t& cursor)
{
    std::vector<std::pair<Kind, std::string>> expired;
    map_.collect_expired(map_.clock()(), options_.sweep_budget, cursor, expired);
    for (const auto& [kind, id] : expired)
        expire_one(kind, id);
}

void PersistentStorage::run_background()
{
    using Clock = std::chrono::steady_clock;
    const auto every = std::max(options_.compact_every, options_.interval);
    auto next_compaction = Clock::now() + every;
    std::size_t cursor = 0;
    std::unique_lock lock{background_mutex_};
    while (!stop_background_) {
        background_wake_.wait_for(lock, options_.sweep_every, [this] { return stop_background_; });
        if (stop_background_)
            break;
        lock.unlock();
        if (map_.ttl().count() > 0)
            sweep_step(cursor);
        const auto now = Clock::now();
        if (now >= next_compaction || (compact_soon_.load(std::memory_order_relaxed) && now >= next_compaction - every + std::chrono::seconds{1})) {
            compact_soon_.store(false, std::memory_order_relaxed);
            if (!compact())
                core::log::error("compaction failed; the log is kept whole and compaction retried in {} ms",
                                 every.count());
            next_compaction = Clock::now() + every;
        }
        lock.lock();
    }
}

void PersistentStorage::stop_threads(bool final_compaction)
{
    std::lock_guard stopping{stop_mutex_};
    if (stopped_)
        return;
    stopped_ = true;
    {
        std::lock_guard lock{background_mutex_};
        stop_background_ = true;
    }
    background_wake_.notify_one();
    if (background_.joinable())
        background_.join();
    if (!committer_)
        return;
    {
        std::lock_guard lock{sequencer_};
        closed_ = true;  // from here every change is refused: the last snapshot holds them all
    }
    if (final_compaction && !compact())
        core::log::error("final compaction failed; the write-ahead log keeps every change");
    committer_->stop();  // a last sync: every pending change is applied or refused
    std::lock_guard lock{sequencer_};
    for (auto& w : pending_)
        w->complete(Errc::storage_unavailable);
    pending_.clear();
    pending_adds_ = 0;
    // tools/loadtest.sh reads this line (fsyncs per update).
    core::log::info("write-ahead log: {} changes appended, {} fdatasyncs since start", log_->next_seq() - first_seq_,
                    log_->syncs());
}

void PersistentStorage::abandon()
{
    stop_threads(false);
}

core::awaitable<void> PersistentStorage::close()
{
    // Off the server thread: the final compaction writes and syncs the whole snapshot.
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [this](auto handler) {
            std::lock_guard lock{stop_mutex_};
            auto done = std::make_unique<PostedCompletion<decltype(handler)>>(std::move(handler), executor_);
            if (closer_.joinable() || stopped_) {
                (*done)();
                return;
            }
            closer_ = std::thread{[this, done = std::move(done)] {
                stop_threads(true);
                (*done)();
            }};
        },
        asio::use_awaitable);
}

bool PersistentStorage::counted(Result<void> appended) noexcept
{
    (appended ? stats_.records : stats_.append_failures).fetch_add(1, std::memory_order_relaxed);
    return static_cast<bool>(appended);
}

void PersistentStorage::write_self_metrics(core::Exposition& out) const
{
    write_map_metrics(out, map_);
    std::uint64_t bytes = 0;
    bool healthy = false;
    {
        std::lock_guard lock{sequencer_};
        if (log_) {
            bytes = log_->bytes();
            healthy = log_->healthy();
        }
    }
    const auto load = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    out.counter_family("metrics_server_wal_records_total", "Changes appended to the write-ahead log.");
    out.sample("metrics_server_wal_records_total", {}, load(stats_.records));
    out.counter_family("metrics_server_wal_write_failures_total", "Appends that failed (the change was not applied).");
    out.sample("metrics_server_wal_write_failures_total", {}, load(stats_.append_failures));
    out.counter_family("metrics_server_wal_fsyncs_total", "fdatasyncs of the write-ahead log.");
    out.sample("metrics_server_wal_fsyncs_total", {}, syncs());
    out.counter_family("metrics_server_wal_fsync_failures_total", "fdatasyncs that failed.");
    out.sample("metrics_server_wal_fsync_failures_total", {}, load(stats_.sync_failures));
    out.gauge_family("metrics_server_wal_bytes", "Bytes in the write-ahead log's segments.");
    out.sample("metrics_server_wal_bytes", {}, bytes);
    out.gauge_family("metrics_server_wal_healthy", "1 while the last append and sync of the log succeeded.");
    out.sample("metrics_server_wal_healthy", {}, std::int64_t{healthy ? 1 : 0});
    out.counter_family("metrics_server_snapshot_writes_total", "Snapshots written (compactions).");
    out.sample("metrics_server_snapshot_writes_total", {}, load(stats_.snapshots));
    out.counter_family("metrics_server_snapshot_failures_total", "Snapshot writes that failed.");
    out.sample("metrics_server_snapshot_failures_total", {}, load(stats_.snapshot_failures));
    out.gauge_family("metrics_server_snapshot_last_success_timestamp_seconds",
                     "Unix time of the last snapshot written, 0 before the first.");
    out.sample("metrics_server_snapshot_last_success_timestamp_seconds", {},
               static_cast<double>(stats_.last_snapshot_ms.load(std::memory_order_relaxed)) / 1000);
}

}  // namespace storage
