#include "storage/persistent.hpp"

#include "core/log.hpp"

#include <algorithm>
#include <exception>
#include <utility>

namespace storage {

/// Owns a completion handler and keeps its executor's work count up (so that an io_context
/// waiting only for a durable snapshot does not run out of work); calling it posts the handler
/// there: the writer thread never runs request code.
template <class Handler>
class PersistentStorage::PostedCompletion final : public Completion {
public:
    PostedCompletion(Handler handler, const asio::any_io_executor& fallback)
        : handler_(std::move(handler)),
          work_(asio::prefer(asio::get_associated_executor(handler_, fallback),
                             asio::execution::outstanding_work.tracked))
    {
    }

    void operator()(Errc e) override
    {
        asio::post(work_, [handler = std::move(handler_), e]() mutable { std::move(handler)(e); });
    }

private:
    Handler handler_;
    asio::any_io_executor work_;
};

template <class Handler>
std::unique_ptr<PersistentStorage::Completion> PersistentStorage::make_completion(Handler handler)
{
    return std::make_unique<PostedCompletion<Handler>>(std::move(handler), executor_);
}

PersistentStorage::PersistentStorage(asio::any_io_executor executor, MemoryStorage& memory, SnapshotFile& file,
                                     std::chrono::milliseconds interval)
    : executor_(std::move(executor)), memory_(memory), file_(file), interval_(interval)
{
    writer_ = std::thread{[this] { run_writer(); }};
}

PersistentStorage::~PersistentStorage()
{
    stop_and_join();
}

Result<std::size_t> PersistentStorage::restore(MemoryStorage& memory, const SnapshotFile& file)
{
    Result<std::vector<OwnedMetric>> loaded = file.load();
    if (!loaded)
        return loaded.error();
    memory.map().restore(*loaded);
    return loaded->size();
}

core::awaitable<Errc> PersistentStorage::durable(std::uint64_t generation)
{
    return asio::async_initiate<decltype(asio::use_awaitable), void(Errc)>(
        [this, generation](auto handler) { wait_durable(generation, make_completion(std::move(handler))); },
        asio::use_awaitable);
}

core::awaitable<Errc> PersistentStorage::settle()
{
    // The generation is bumped after the memory change: a writer that reads it lists the change.
    const std::uint64_t generation = ++generation_;
    if (!synchronous())
        co_return Errc::ok;
    co_return co_await durable(generation);
}

core::awaitable<Result<Metric>> PersistentStorage::apply(Metric update)
{
    Result<Metric> r = memory_.map().update(update, memory_.stamp());
    if (!r)
        co_return r;
    // Awaited as a statement: GCC 12 miscompiles a co_await inside an if condition.
    const Errc e = co_await settle();
    if (e != Errc::ok)
        co_return e;
    co_return r;
}

core::awaitable<Result<void>> PersistentStorage::apply_batch(std::span<const Metric> batch,
                                                             std::vector<Metric>& stored)
{
    Result<void> r = memory_.map().update_batch(batch, &stored, memory_.stamp());
    if (!r)
        co_return r;
    const Errc e = co_await settle();
    if (e != Errc::ok)
        co_return e;
    co_return r;
}

std::optional<Result<Metric>> PersistentStorage::apply_now(const Metric& update)
{
    if (synchronous())
        return std::nullopt;
    Result<Metric> r = memory_.map().update(update, memory_.stamp());
    if (r)
        ++generation_;  // after the change, as settle() does
    return r;
}

std::optional<Result<void>> PersistentStorage::apply_batch_now(std::span<const Metric> batch,
                                                               std::vector<Metric>& stored)
{
    if (synchronous())
        return std::nullopt;
    Result<void> r = memory_.map().update_batch(batch, &stored, memory_.stamp());
    if (r)
        ++generation_;  // after the change, as settle() does
    return r;
}

std::optional<Result<Metric>> PersistentStorage::get_now(Kind kind, std::string_view id)
{
    return memory_.map().get(kind, id);
}

core::awaitable<Result<Metric>> PersistentStorage::get(Kind kind, std::string_view id)
{
    co_return memory_.map().get(kind, id);
}

// The Request interface over the per-operation members above; a removal is a change like an
// update (snapshotted, and awaited with interval 0).
std::optional<Result<Metric>> PersistentStorage::try_now(const Request& r)
{
    switch (r.op) {
    case Op::update:
        return apply_now(r.metric);
    case Op::get:
        return get_now(r.metric.kind, r.metric.id);
    case Op::update_batch: {
        auto done = apply_batch_now(r.batch, *r.stored);
        if (!done)
            return std::nullopt;
        if (!*done)
            return Result<Metric>{done->error()};
        return Result<Metric>{Metric{}};
    }
    case Op::remove:
        if (synchronous())
            return std::nullopt;
        Result<Metric> removed = memory_.map().remove(r.metric.kind, r.metric.id, memory_.stamp());
        if (removed)
            ++generation_;  // after the change, as settle() does
        return removed;
    }
    return std::nullopt;
}

core::awaitable<Result<Metric>> PersistentStorage::run(Request r)
{
    switch (r.op) {
    case Op::update:
        co_return co_await apply(r.metric);
    case Op::get:
        co_return co_await get(r.metric.kind, r.metric.id);
    case Op::update_batch: {
        const Result<void> done = co_await apply_batch(r.batch, *r.stored);
        if (!done)
            co_return done.error();
        co_return Metric{};
    }
    case Op::remove:
        break;
    }
    Result<Metric> removed = memory_.map().remove(r.metric.kind, r.metric.id, memory_.stamp());
    if (!removed)
        co_return removed;
    const Errc e = co_await settle();  // a statement: see core/asio.hpp
    if (e != Errc::ok)
        co_return e;
    co_return removed;
}

core::awaitable<Result<std::vector<OwnedMetric>>> PersistentStorage::list()
{
    co_return memory_.map().list();
}

core::awaitable<bool> PersistentStorage::ping()
{
    co_return true;
}

core::awaitable<void> PersistentStorage::close()
{
    co_await asio::async_initiate<decltype(asio::use_awaitable), void(Errc)>(
        [this](auto handler) { wait_closed(make_completion(std::move(handler))); }, asio::use_awaitable);
    // The writer has completed us as its last act: this join returns at once.
    stop_and_join();
}

void PersistentStorage::wait_durable(std::uint64_t generation, std::unique_ptr<Completion> done)
{
    std::lock_guard lock{mutex_};
    if (written_ >= generation) {
        (*done)(Errc::ok);  // a write that started after our update already finished
    } else if (stop_) {
        (*done)(Errc::storage_unavailable);  // no writer left to make it durable
    } else {
        waiters_.push_back({generation, std::move(done)});
        wake_.notify_one();
    }
}

void PersistentStorage::wait_closed(std::unique_ptr<Completion> done)
{
    std::lock_guard lock{mutex_};
    if (finished_) {
        (*done)(Errc::ok);
        return;
    }
    stop_ = true;
    closers_.push_back(std::move(done));
    wake_.notify_one();
}

void PersistentStorage::stop_and_join()
{
    {
        std::lock_guard lock{mutex_};
        stop_ = true;
    }
    wake_.notify_one();
    std::lock_guard lock{join_mutex_};
    if (writer_.joinable())
        writer_.join();
}

Errc PersistentStorage::write_snapshot()
{
    ++writes_;
    try {
        const std::vector<OwnedMetric> all = memory_.map().list();
        const Result<void> r = file_.write(all);
        return r ? Errc::ok : r.error();
    } catch (const std::exception& e) {  // out of memory listing or formatting a large store
        core::log::error("snapshot: {}", e.what());
        return Errc::io_error;
    }
}

void PersistentStorage::run_writer()
{
    std::unique_lock lock{mutex_};
    for (;;) {
        if (synchronous())
            wake_.wait(lock, [this] { return stop_ || !waiters_.empty(); });
        else
            wake_.wait_until(lock, std::chrono::steady_clock::now() + interval_, [this] { return stop_; });
        const bool stopping = stop_;
        // Read before listing: every update numbered up to `g` is already in memory.
        const std::uint64_t g = generation_.load();
        if (stopping || g != written_) {
            lock.unlock();
            const Errc e = write_snapshot();
            lock.lock();
            if (e == Errc::ok)
                written_ = std::max(written_, g);
            // Waiters covered by this write get its outcome; later ones wait for the next.
            const auto later = std::partition(waiters_.begin(), waiters_.end(),
                                              [g](const Waiter& w) { return w.generation > g; });
            for (auto it = later; it != waiters_.end(); ++it)
                (*it->done)(e);
            waiters_.erase(later, waiters_.end());
        }
        if (stopping)
            break;
    }
    // wait_durable refuses new waiters once stop_ is set, and every earlier one is covered by
    // the final write above; still, nobody may be left waiting forever.
    for (Waiter& w : waiters_)
        (*w.done)(Errc::storage_unavailable);
    waiters_.clear();
    finished_ = true;
    for (auto& done : closers_)
        (*done)(Errc::ok);
    closers_.clear();
}

}  // namespace storage
