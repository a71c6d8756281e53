#include "storage/memory.hpp"

namespace storage {

MemoryStorage::MemoryStorage(MapOptions options) : map_(options) {}

MemoryStorage::~MemoryStorage() = default;

// The answer is built in place in the optional (see MemoryMap::update_into).
std::optional<Result<Metric>> MemoryStorage::try_now(const Request& r)
{
    std::optional<Result<Metric>> out{std::in_place, Metric{}};
    switch (r.op) {
    case Op::update:
        map_.update_into(r.metric, stamp(), *out);
        break;
    case Op::get:
        map_.get_into(r.metric.kind, r.metric.id, *out);
        break;
    case Op::remove:
        *out = map_.remove(r.metric.kind, r.metric.id, stamp());
        break;
    case Op::update_batch:
        if (const Result<void> done = map_.update_batch(r.batch, r.stored, stamp()); !done)
            *out = done.error();
        break;
    }
    return out;
}

core::awaitable<Result<Metric>> MemoryStorage::run(Request r)
{
    co_return *try_now(r);
}

core::awaitable<Result<std::vector<OwnedMetric>>> MemoryStorage::list()
{
    co_return map_.list();
}

core::awaitable<bool> MemoryStorage::ping()
{
    co_return true;
}

core::awaitable<void> MemoryStorage::close()
{
    closed_.store(true);
    co_return;
}

std::size_t MemoryStorage::sweep_step(std::size_t budget)
{
    std::lock_guard lock{sweep_mutex_};
    const Stamp now = stamp();
    expired_.clear();
    map_.collect_expired(now.time, budget, sweep_cursor_, expired_);
    std::size_t removed = 0;
    for (const auto& [kind, id] : expired_)
        removed += map_.expire(kind, id, now) ? 1 : 0;
    return removed;
}

core::awaitable<void> MemoryStorage::sweep_expired(std::chrono::milliseconds period, std::size_t budget)
{
    asio::steady_timer timer{co_await asio::this_coro::executor};
    while (!closed_.load()) {
        timer.expires_after(period);
        const auto [ec] = co_await timer.async_wait(core::use_nothrow_awaitable);
        if (ec || closed_.load())
            co_return;
        sweep_step(budget);
    }
}

void MemoryStorage::write_self_metrics(core::Exposition& out) const { write_map_metrics(out, map_); }

}  // namespace storage
