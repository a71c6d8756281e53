#include "storage/memory.hpp"

#include "core/number.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <random>
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
    return self().apply(update);
}

std::optional<Result<Metric>> MemoryStorageAsync::get_now(Kind kind, std::string_view id)
{
    return std::as_const(self()).get(kind, id);
}

std::optional<Result<void>> MemoryStorageAsync::apply_batch_now(std::span<const Metric> batch,
                                                                std::vector<Metric>& stored)
{
    return self().apply_batch(batch, &stored);
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

namespace {

/// Locks a set of shard mutexes (already in ascending order) and unlocks them all on exit.
class LockAll {
public:
    explicit LockAll(std::span<std::mutex* const> mutexes) : mutexes_(mutexes)
    {
        for (std::mutex* m : mutexes_)
            m->lock();
    }
    ~LockAll()
    {
        for (std::mutex* m : mutexes_)
            m->unlock();
    }
    LockAll(const LockAll&) = delete;
    LockAll& operator=(const LockAll&) = delete;

private:
    std::span<std::mutex* const> mutexes_;
};

}  // namespace

namespace {

std::uint64_t random_seed()
{
    std::random_device device;
    return static_cast<std::uint64_t>(device()) << 32 | device();
}

}  // namespace

MemoryStorage::MemoryStorage(Shards shards)
    : seed_(random_seed()),
      mask_(std::bit_ceil(std::max<std::size_t>(shards.count, 1)) - 1),
      shards_(std::make_unique<Shard[]>(mask_ + 1))
{
}

MemoryStorage::~MemoryStorage() = default;

Result<Metric> MemoryStorage::apply(const Metric& update)
{
    const Key k = key(update.id);
    Shard& s = shard(k);
    std::lock_guard lock{s.mutex};
    if (update.kind == Kind::gauge) {
        if (auto* e = s.gauges.find(k.name, k.hash))
            e->value = update.value;
        else
            s.gauges.insert(k.name, k.hash, update.value);
        return Metric::gauge(update.id, update.value);
    }
    auto* e = s.counters.find(k.name, k.hash);
    if (e == nullptr) {
        s.counters.insert(k.name, k.hash, update.delta);
        return Metric::counter(update.id, update.delta);
    }
    const Result<std::int64_t> total = core::add_counter(e->value, update.delta);
    if (!total)
        return total.error();
    e->value = *total;
    return Metric::counter(update.id, *total);
}

Result<void> MemoryStorage::apply_batch(std::span<const Metric> batch, std::vector<Metric>* stored)
{
    // How to take back one element's change if a later one overflows.
    struct Undo {
        std::size_t item;      ///< index into batch (its key is recomputed from `keys`)
        bool inserted;         ///< the element created the name: erase it
        double* gauge;         ///< else the slot and its previous value
        std::int64_t* counter;
        double old_gauge;
        std::int64_t old_counter;
    };
    // Per-thread scratch reused across batches: steady-state batches allocate only `stored`.
    struct Scratch {
        std::vector<Key> keys;
        std::vector<std::uint64_t> touched;  ///< one bit per shard
        std::vector<std::mutex*> locks;
        std::vector<Undo> undo;
    };
    thread_local Scratch scratch;
    auto& [keys, touched, locks, undo] = scratch;
    keys.clear();
    locks.clear();
    undo.clear();
    touched.assign((mask_ >> 6) + 1, 0);

    for (const Metric& m : batch) {
        keys.push_back(key(m.id));
        const std::size_t index = keys.back().hash & mask_;
        touched[index >> 6] |= std::uint64_t{1} << (index & 63);
    }
    // Every batch locks its shards in ascending index order: no deadlock. A bitmap rather than
    // sorting the batch's shards: one pass, whatever the batch size.
    for (std::size_t word = 0; word < touched.size(); ++word)
        for (std::uint64_t bits = touched[word]; bits != 0; bits &= bits - 1)
            locks.push_back(&shards_[word * 64 + static_cast<std::size_t>(std::countr_zero(bits))].mutex);

    std::shared_lock gate{batch_gate_};
    LockAll held{locks};

    const auto rollback = [&] {
        for (auto u = undo.rbegin(); u != undo.rend(); ++u) {
            const Key& k = keys[u->item];
            Shard& s = shard(k);
            if (!u->inserted) {
                if (u->gauge != nullptr)
                    *u->gauge = u->old_gauge;
                else
                    *u->counter = u->old_counter;
            } else if (batch[u->item].kind == Kind::gauge) {
                s.gauges.erase(k.name, k.hash);
            } else {
                s.counters.erase(k.name, k.hash);
            }
        }
    };

    try {
        if (stored != nullptr) {
            stored->clear();
            stored->reserve(batch.size());
        }
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const Metric& m = batch[i];
            const Key& k = keys[i];
            Shard& s = shard(k);
            Metric after;
            if (m.kind == Kind::gauge) {
                if (auto* e = s.gauges.find(k.name, k.hash)) {
                    undo.push_back({i, false, &e->value, nullptr, e->value, 0});
                    e->value = m.value;
                } else {
                    s.gauges.insert(k.name, k.hash, m.value);
                    undo.push_back({i, true, nullptr, nullptr, 0, 0});
                }
                after = Metric::gauge(m.id, m.value);
            } else if (auto* e = s.counters.find(k.name, k.hash)) {
                const Result<std::int64_t> total = core::add_counter(e->value, m.delta);
                if (!total) {
                    rollback();
                    return total.error();
                }
                undo.push_back({i, false, nullptr, &e->value, 0, e->value});
                e->value = *total;
                after = Metric::counter(m.id, *total);
            } else {
                s.counters.insert(k.name, k.hash, m.delta);
                undo.push_back({i, true, nullptr, nullptr, 0, 0});
                after = Metric::counter(m.id, m.delta);
            }
            if (stored != nullptr)
                stored->push_back(after);
        }
    } catch (...) {  // out of memory inserting a name: the batch still changes nothing
        rollback();
        throw;
    }
    return {};
}

Result<Metric> MemoryStorage::get(Kind kind, std::string_view id) const
{
    const Key k = key(id);
    const Shard& s = shard(k);
    std::lock_guard lock{s.mutex};
    if (kind == Kind::gauge) {
        const auto* e = s.gauges.find(k.name, k.hash);
        if (e == nullptr)
            return Errc::not_found;
        return Metric::gauge(id, e->value);
    }
    const auto* e = s.counters.find(k.name, k.hash);
    if (e == nullptr)
        return Errc::not_found;
    return Metric::counter(id, e->value);
}

std::vector<OwnedMetric> MemoryStorage::list() const
{
    std::vector<OwnedMetric> out;
    out.reserve(size());  // once: an exact reserve per shard would reallocate for every shard
    {
        std::unique_lock gate{batch_gate_};
        for (std::size_t i = 0; i <= mask_; ++i) {
            const Shard& s = shards_[i];
            std::lock_guard lock{s.mutex};
            s.gauges.for_each([&](const auto& e) { out.push_back({std::string{e.name()}, Kind::gauge, e.value, 0}); });
            s.counters.for_each(
                [&](const auto& e) { out.push_back({std::string{e.name()}, Kind::counter, 0, e.value}); });
        }
    }
    std::sort(out.begin(), out.end(), [](const OwnedMetric& a, const OwnedMetric& b) {
        if (const int c = a.id.compare(b.id); c != 0)
            return c < 0;
        return a.kind < b.kind;  // Kind::gauge < Kind::counter
    });
    return out;
}

std::size_t MemoryStorage::size() const
{
    std::size_t n = 0;
    for (std::size_t i = 0; i <= mask_; ++i) {
        const Shard& s = shards_[i];
        std::lock_guard lock{s.mutex};
        n += s.gauges.size() + s.counters.size();
    }
    return n;
}

void MemoryStorage::clear()
{
    std::unique_lock gate{batch_gate_};
    for (std::size_t i = 0; i <= mask_; ++i) {
        Shard& s = shards_[i];
        std::lock_guard lock{s.mutex};
        s.gauges.clear();
        s.counters.clear();
    }
}

void MemoryStorage::restore(std::span<const OwnedMetric> metrics)
{
    clear();
    for (const OwnedMetric& m : metrics) {
        const Key k = key(m.id);
        Shard& s = shard(k);
        std::lock_guard lock{s.mutex};
        if (m.kind == Kind::gauge) {
            if (auto* e = s.gauges.find(k.name, k.hash))
                e->value = m.value;
            else
                s.gauges.insert(k.name, k.hash, m.value);
        } else if (auto* e = s.counters.find(k.name, k.hash)) {
            e->value = m.delta;
        } else {
            s.counters.insert(k.name, k.hash, m.delta);
        }
    }
}

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
