#include "storage/storage.hpp"

namespace storage {

// TRANSITIONAL: both defaults route to the old per-operation virtuals.

std::optional<Result<Metric>> Storage::try_now(const Request& r)
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
        break;
    }
    return std::nullopt;
}

core::awaitable<Result<Metric>> Storage::run(Request r)
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
    co_return Errc::storage_unavailable;
}

}  // namespace storage
