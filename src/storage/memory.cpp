#include "storage/memory.hpp"

#include "core/bytes.hpp"
#include "core/number.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <random>
#include <thread>
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
    self().apply_into(update, *out);
    return out;
}

std::optional<Result<Metric>> MemoryStorageAsync::get_now(Kind kind, std::string_view id)
{
    std::optional<Result<Metric>> out{std::in_place, Metric{}};
    std::as_const(self()).get_into(kind, id, *out);
    return out;
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

using detail::Entry;

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

/// Makes shard sequence numbers odd for its lifetime: lock-free readers of those shards retry
/// under the shard's mutex meanwhile, so they never see part of a batch, and single counter
/// updates step aside (see take_counter). Sequentially consistent, with take_counter's two
/// operations: a single update either sees a shard odd, or the batch sees its owner byte.
class BatchWindow {
public:
    explicit BatchWindow(std::span<std::atomic<std::uint32_t>* const> seqs) noexcept : seqs_(seqs)
    {
        for (auto* seq : seqs_)
            seq->store(seq->load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst);  // one fence, not one per shard
    }
    ~BatchWindow()
    {
        for (auto* seq : seqs_)
            seq->store(seq->load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
    BatchWindow(const BatchWindow&) = delete;
    BatchWindow& operator=(const BatchWindow&) = delete;

private:
    std::span<std::atomic<std::uint32_t>* const> seqs_;
};

/// Waiting for another single update of the same counter: it holds the owner byte for a few
/// instructions, unless its thread was preempted.
void spin_wait(unsigned& spins) noexcept
{
    if (++spins % 64 != 0) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        std::this_thread::yield();
    }
}

/// Takes a counter's owner byte (Entry::owner: 1 while a single update reads, adds and writes
/// it). Without the shard's mutex (`locked` false), it then gives it back and returns false if a
/// batch is changing the shard: the caller waits for the batch on the mutex instead.
bool take_counter(std::atomic<std::uint8_t>& owner, const std::atomic<std::uint32_t>& batch_seq,
                  bool locked) noexcept
{
    for (unsigned spins = 0;; spin_wait(spins)) {
        std::uint8_t free = 0;
        if (owner.compare_exchange_weak(free, 1, std::memory_order_seq_cst, std::memory_order_relaxed))
            break;
    }
    if (locked || batch_seq.load(std::memory_order_seq_cst) % 2 == 0)
        return true;
    owner.store(0, std::memory_order_release);
    return false;
}

/// A batch waits for the single update that may hold a counter to finish; none can take it
/// after that while the batch's shards are odd.
void wait_for_owner(const std::atomic<std::uint8_t>& owner) noexcept
{
    for (unsigned spins = 0; owner.load(std::memory_order_seq_cst) != 0;)
        spin_wait(spins);
}

/// Frees, on its way out, the entries a batch made for new names and did not publish (it stopped
/// early: out of memory, or a counter overflow).
class FreeUnpublished {
public:
    FreeUnpublished(std::span<const detail::BatchTarget> targets, std::vector<std::uint32_t>& fresh) noexcept
        : targets_(targets), fresh_(fresh)
    {
    }
    ~FreeUnpublished()
    {
        for (const std::uint32_t i : fresh_) {
            if (targets_[i].gauge != nullptr)
                Entry<double>::destroy(targets_[i].gauge);
            else
                Entry<std::int64_t>::destroy(targets_[i].counter);
        }
        fresh_.clear();
    }
    FreeUnpublished(const FreeUnpublished&) = delete;
    FreeUnpublished& operator=(const FreeUnpublished&) = delete;

private:
    std::span<const detail::BatchTarget> targets_;
    std::vector<std::uint32_t>& fresh_;
};

/// Adds to a counter held for this single update, and hands it back.
Result<std::int64_t> add_held(Entry<std::int64_t>& e, std::int64_t delta) noexcept
{
    const Result<std::int64_t> total = core::add_counter(e.load(), delta);
    if (total)
        e.store(*total);
    e.owner().store(0, std::memory_order_release);
    return total;
}

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
    Result<Metric> out{Metric{}};
    apply_into(update, out);
    return out;
}

void MemoryStorage::apply_into(const Metric& update, Result<Metric>& out)
{
    Metric& m = *out;
    // Word by word: the router has often just written `update` so (core::bytes::opaque).
    m.id = {core::bytes::opaque(update.id.data()), core::bytes::opaque(update.id.size())};
    m.kind = update.kind;
    const Key k = key(update.id);
    if (update.kind == Kind::gauge) {
        set_gauge(k, update.value);
        m.value = update.value;
        return;
    }
    const Result<std::int64_t> total = add_counter(k, update.delta);
    if (total)
        m.delta = *total;
    else
        out = total.error();
}

void MemoryStorage::set_gauge(const Key& k, double value)
{
    Shard& s = shard(k);
    {
        detail::ReadGuard guard;
        if (auto* e = s.gauges.find(k.name, k.hash)) {
            e->store(value);
            return;
        }
    }
    std::lock_guard lock{s.mutex};  // a new name, unless another thread has just inserted it
    if (auto* e = s.gauges.find(k.name, k.hash))
        e->store(value);
    else
        s.gauges.insert(k.name, k.hash, value);
}

Result<std::int64_t> MemoryStorage::add_counter(const Key& k, std::int64_t delta)
{
    Shard& s = shard(k);
    {
        detail::ReadGuard guard;
        if (auto* e = s.counters.find(k.name, k.hash); e != nullptr && take_counter(e->owner(), s.batch_seq, false))
            return add_held(*e, delta);
    }
    std::lock_guard lock{s.mutex};  // a new name, or a batch is changing the shard: wait for it
    auto* e = s.counters.find(k.name, k.hash);
    if (e == nullptr) {
        s.counters.insert(k.name, k.hash, delta);
        return delta;
    }
    take_counter(e->owner(), s.batch_seq, true);
    return add_held(*e, delta);
}

// A batch, with every shard it touches locked (ascending order: no deadlock) and marked odd:
//  1. find each element's entry; make entries for new names (unpublished; one per distinct
//     name), and room for them in their tables. Nothing visible has changed yet, so running
//     out of memory here changes nothing.
//  2. add the counters in order, undoing them all if one overflows: behind odd shards, no one
//     else writes or reads those values meanwhile.
//  3. store the gauges, which cannot fail, and publish the new names.
Result<void> MemoryStorage::apply_batch(std::span<const Metric> batch, std::vector<Metric>* stored)
{
    // Per-thread scratch reused across batches: steady-state batches allocate only `stored`.
    struct Scratch {
        std::vector<Key> keys;
        std::vector<std::uint64_t> touched;  ///< one bit per shard
        std::vector<std::mutex*> locks;
        std::vector<std::atomic<std::uint32_t>*> seqs;
        std::vector<Target> targets;
        std::vector<std::uint32_t> missing;  ///< elements whose name is new
        std::vector<std::uint32_t> fresh;    ///< elements that own a new entry
        std::vector<std::pair<Entry<std::int64_t>*, std::int64_t>> undo;  ///< counter, previous total
    };
    thread_local Scratch scratch;
    auto& [keys, touched, locks, seqs, targets, missing, fresh, undo] = scratch;
    keys.clear();
    locks.clear();
    seqs.clear();
    touched.assign((mask_ >> 6) + 1, 0);
    targets.resize(batch.size());  // find_targets sets every field
    undo.clear();
    undo.reserve(batch.size());
    if (stored != nullptr)
        stored->resize(batch.size());

    for (const Metric& m : batch) {
        keys.push_back(key(m.id));
        const std::size_t index = keys.back().hash & mask_;
        touched[index >> 6] |= std::uint64_t{1} << (index & 63);
    }
    // A bitmap rather than sorting the batch's shards: one pass, whatever the batch size.
    for (std::size_t word = 0; word < touched.size(); ++word)
        for (std::uint64_t bits = touched[word]; bits != 0; bits &= bits - 1) {
            Shard& s = shards_[word * 64 + static_cast<std::size_t>(std::countr_zero(bits))];
            locks.push_back(&s.mutex);
            seqs.push_back(&s.batch_seq);
        }

    std::shared_lock gate{batch_gate_};
    LockAll held{locks};
    BatchWindow window{seqs};

    // Entries made for new names and not published are freed on every way out.
    const FreeUnpublished unpublished{targets, fresh};
    find_targets(batch, keys, targets, missing);
    make_fresh(batch, keys, targets, missing, fresh);
    reserve_fresh(keys, targets, fresh);

    for (std::size_t i = 0; i < batch.size(); ++i) {
        const Metric& m = batch[i];
        if (m.kind != Kind::counter)
            continue;
        Entry<std::int64_t>& e = *targets[i].counter;
        if (!targets[i].fresh)
            wait_for_owner(e.owner());
        const Result<std::int64_t> total = core::add_counter(e.load(), m.delta);
        if (!total) {
            for (auto u = undo.rbegin(); u != undo.rend(); ++u)
                u->first->store(u->second);
            if (stored != nullptr)
                stored->clear();
            return total.error();
        }
        undo.emplace_back(&e, e.load());  // capacity reserved: cannot throw
        e.store(*total);
        if (stored != nullptr)
            (*stored)[i] = Metric::counter(m.id, *total);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const Metric& m = batch[i];
        if (m.kind != Kind::gauge)
            continue;
        targets[i].gauge->store(m.value);
        if (stored != nullptr)
            (*stored)[i] = Metric::gauge(m.id, m.value);
    }
    publish_fresh(keys, targets, fresh);
    return {};
}

void MemoryStorage::find_targets(std::span<const Metric> batch, std::span<const Key> keys, std::span<Target> targets,
                                 std::vector<std::uint32_t>& missing) const
{
    missing.clear();
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const Shard& s = shard(keys[i]);
        Target& t = targets[i];
        t = Target{};
        if (batch[i].kind == Kind::gauge)
            t.gauge = s.gauges.find(keys[i].name, keys[i].hash);
        else
            t.counter = s.counters.find(keys[i].name, keys[i].hash);
        if (t.gauge == nullptr && t.counter == nullptr)
            missing.push_back(static_cast<std::uint32_t>(i));
    }
}

/// One unpublished entry per distinct new (kind, name), shared by the elements that name it; its
/// owner's index goes to `fresh` as soon as it exists. New names are rare after an agent's first
/// batch: sorting them is cheaper than a second hash table.
void MemoryStorage::make_fresh(std::span<const Metric> batch, std::span<const Key> keys, std::span<Target> targets,
                               std::vector<std::uint32_t>& missing, std::vector<std::uint32_t>& fresh)
{
    fresh.clear();
    if (missing.empty())
        return;
    std::sort(missing.begin(), missing.end(), [&](std::uint32_t a, std::uint32_t b) {
        if (batch[a].kind != batch[b].kind)
            return batch[a].kind < batch[b].kind;
        if (keys[a].hash != keys[b].hash)
            return keys[a].hash < keys[b].hash;
        return keys[a].name != keys[b].name ? keys[a].name < keys[b].name : a < b;
    });
    fresh.reserve(missing.size());  // push_back below cannot throw: no entry can leak
    for (const std::uint32_t i : missing) {
        Target& t = targets[i];
        t.fresh = true;
        if (!fresh.empty()) {
            const std::uint32_t owner = fresh.back();
            if (batch[owner].kind == batch[i].kind && keys[owner].name == keys[i].name) {
                t.gauge = targets[owner].gauge;
                t.counter = targets[owner].counter;
                continue;
            }
        }
        if (batch[i].kind == Kind::gauge)
            t.gauge = Entry<double>::make(keys[i].name, 0);
        else
            t.counter = Entry<std::int64_t>::make(keys[i].name, 0);
        fresh.push_back(i);
    }
}

void MemoryStorage::reserve_fresh(std::span<const Key> keys, std::span<const Target> targets,
                                  std::span<const std::uint32_t> fresh)
{
    if (fresh.empty())
        return;
    // Per shard and kind, how many new names (fresh is sorted by kind, then hash: not by shard).
    thread_local std::vector<std::uint32_t> count;
    count.assign(2 * (mask_ + 1), 0);
    for (const std::uint32_t i : fresh)
        ++count[2 * (keys[i].hash & mask_) + (targets[i].gauge != nullptr ? 0 : 1)];
    for (std::size_t index = 0; index <= mask_; ++index) {
        if (count[2 * index] != 0)
            shards_[index].gauges.reserve(count[2 * index]);
        if (count[2 * index + 1] != 0)
            shards_[index].counters.reserve(count[2 * index + 1]);
    }
}

void MemoryStorage::publish_fresh(std::span<const Key> keys, std::span<const Target> targets,
                                  std::vector<std::uint32_t>& fresh) noexcept
{
    for (const std::uint32_t i : fresh) {
        Shard& s = shard(keys[i]);
        if (targets[i].gauge != nullptr)
            s.gauges.place(targets[i].gauge, keys[i].hash);
        else
            s.counters.place(targets[i].counter, keys[i].hash);
    }
    fresh.clear();  // the tables own them now
}

MemoryStorage::Reading MemoryStorage::read(const Shard& s, Kind kind, const Key& k) noexcept
{
    if (kind == Kind::gauge) {
        const auto* e = s.gauges.find(k.name, k.hash);
        return e == nullptr ? Reading{} : Reading{std::bit_cast<std::uint64_t>(e->load()), true};
    }
    const auto* e = s.counters.find(k.name, k.hash);
    return e == nullptr ? Reading{} : Reading{static_cast<std::uint64_t>(e->load()), true};
}

MemoryStorage::Reading MemoryStorage::read_settled(Kind kind, std::string_view id) const
{
    const Key k = key(id);
    const Shard& s = shard(k);
    {
        // A sequence-lock read: it counts only if no batch changed the shard meanwhile.
        detail::ReadGuard guard;
        const std::uint32_t before = s.batch_seq.load(std::memory_order_acquire);
        if (before % 2 == 0) {
            const Reading r = read(s, kind, k);
            std::atomic_thread_fence(std::memory_order_acquire);
            if (s.batch_seq.load(std::memory_order_relaxed) == before)
                return r;
        }
    }
    std::lock_guard lock{s.mutex};  // a batch is changing the shard: wait for it
    return read(s, kind, k);
}

Result<Metric> MemoryStorage::get(Kind kind, std::string_view id) const
{
    Result<Metric> out{Metric{}};
    get_into(kind, id, out);
    return out;
}

void MemoryStorage::get_into(Kind kind, std::string_view id, Result<Metric>& out) const
{
    const Reading r = read_settled(kind, id);
    if (!r.found) {
        out = Errc::not_found;
        return;
    }
    Metric& m = *out;
    m.id = id;
    m.kind = kind;
    if (kind == Kind::gauge)
        m.value = std::bit_cast<double>(r.bits);
    else
        m.delta = static_cast<std::int64_t>(r.bits);
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
            s.gauges.for_each([&](const auto& e) { out.push_back({std::string{e.name()}, Kind::gauge, e.load(), 0}); });
            s.counters.for_each(
                [&](const auto& e) { out.push_back({std::string{e.name()}, Kind::counter, 0, e.load()}); });
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
                e->store(m.value);
            else
                s.gauges.insert(k.name, k.hash, m.value);
        } else if (auto* e = s.counters.find(k.name, k.hash)) {
            e->store(m.delta);
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
