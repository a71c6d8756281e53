#include "storage/memory.hpp"

#include <utility>

namespace storage {

namespace detail {

MemoryStorage& MemoryStorageAsync::self() noexcept
{
    return static_cast<MemoryStorage&>(*this);
}

core::awaitable<Result<Metric>> MemoryStorageAsync::apply(Metric update)
{
    co_return self().apply(update);
}

core::awaitable<Result<void>> MemoryStorageAsync::apply_batch(std::span<const Metric> batch,
                                                              std::vector<Metric>& stored)
{
    co_return self().apply_batch(batch, &stored);
}

core::awaitable<Result<Metric>> MemoryStorageAsync::get(Kind kind, std::string_view id)
{
    co_return std::as_const(self()).get(kind, id);
}

std::optional<Result<Metric>> MemoryStorageAsync::apply_now(const Metric& update)
{
    std::optional<Result<Metric>> out{std::in_place, Metric{}};
    self().map_.update_into(update, self().stamp(), *out);
    return out;
}

std::optional<Result<Metric>> MemoryStorageAsync::get_now(Kind kind, std::string_view id)
{
    std::optional<Result<Metric>> out{std::in_place, Metric{}};
    self().map_.get_into(kind, id, *out);
    return out;
}

std::optional<Result<void>> MemoryStorageAsync::apply_batch_now(std::span<const Metric> batch,
                                                                std::vector<Metric>& stored)
{
    return self().apply_batch(batch, &stored);
}

std::optional<Result<Metric>> MemoryStorageAsync::try_now(const Request& r)
{
    MemoryMap& map = self().map_;
    std::optional<Result<Metric>> out{std::in_place, Metric{}};
    switch (r.op) {
    case Op::update:
        map.update_into(r.metric, self().stamp(), *out);
        break;
    case Op::get:
        map.get_into(r.metric.kind, r.metric.id, *out);
        break;
    case Op::remove:
        *out = map.remove(r.metric.kind, r.metric.id, self().stamp());
        break;
    case Op::update_batch:
        if (const Result<void> done = map.update_batch(r.batch, r.stored, self().stamp()); !done)
            *out = done.error();
        break;
    }
    return out;
}

core::awaitable<Result<Metric>> MemoryStorageAsync::run(Request r)
{
    co_return *try_now(r);
}

core::awaitable<Result<std::vector<OwnedMetric>>> MemoryStorageAsync::list()
{
    co_return std::as_const(self()).list();
}

core::awaitable<bool> MemoryStorageAsync::ping()
{
    co_return true;
}

core::awaitable<void> MemoryStorageAsync::close()
{
    co_return;
}

}  // namespace detail

MemoryStorage::MemoryStorage(MapOptions options) : map_(options) {}

MemoryStorage::~MemoryStorage() = default;

double MemoryStorage::gauge(std::string_view id) const
{
    const Result<Metric> m = get(Kind::gauge, id);
    return m ? m->value : 0;
}

std::int64_t MemoryStorage::counter(std::string_view id) const
{
    const Result<Metric> m = get(Kind::counter, id);
    return m ? m->delta : 0;
}

}  // namespace storage
