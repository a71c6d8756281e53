#include "storage/memory_map.hpp"

#include "core/bytes.hpp"
#include "core/number.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <limits>
#include <random>
#include <thread>

namespace storage {

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
/// under the shard's mutex meanwhile, so they never see part of a batch, and single updates
/// step aside (see take). Sequentially consistent, with take's two operations: a single update
/// either sees a shard odd, or the batch sees its lock byte.
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

/// Waiting for another holder of an entry's lock byte: it holds it for a few instructions,
/// unless its thread was preempted.
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

enum class Took : std::uint8_t {
    held,     ///< the caller holds the lock byte
    busy,     ///< a batch is changing the shard: wait for it on the shard's mutex
    removed,  ///< the entry left its table: look the name up again under the shard's mutex
};

/// Takes an entry's lock byte. Without the shard's mutex (`locked` false), it then gives it back
/// and answers busy if a batch is changing the shard.
template <class V>
Took take(const Entry<V>& e, const std::atomic<std::uint32_t>& batch_seq, bool locked) noexcept
{
    auto& lock = e.lock();
    for (unsigned spins = 0;; spin_wait(spins)) {
        std::uint8_t state = Entry<V>::free;
        if (lock.compare_exchange_weak(state, Entry<V>::held, std::memory_order_seq_cst, std::memory_order_relaxed))
            break;
        if (state == Entry<V>::removed)
            return Took::removed;
    }
    if (locked || batch_seq.load(std::memory_order_seq_cst) % 2 == 0)
        return Took::held;
    lock.store(Entry<V>::free, std::memory_order_release);
    return Took::busy;
}

template <class V>
void give_back(const Entry<V>& e) noexcept
{
    e.lock().store(Entry<V>::free, std::memory_order_release);
}

/// A batch waits for the single update that may hold an entry to finish; none can take it
/// after that while the batch's shards are odd.
template <class V>
void wait_for_holder(Entry<V>& e) noexcept
{
    for (unsigned spins = 0; e.lock().load(std::memory_order_seq_cst) == Entry<V>::held;)
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

/// A value as its bits, and back.
std::uint64_t bits_of(double v) noexcept { return std::bit_cast<std::uint64_t>(v); }
std::uint64_t bits_of(std::int64_t v) noexcept { return static_cast<std::uint64_t>(v); }

/// What an update makes of the current value: a gauge replaces, a counter adds.
Result<double> combine(double, double operand) noexcept { return operand; }
Result<std::int64_t> combine(std::int64_t current, std::int64_t operand) noexcept
{
    return core::add_counter(current, operand);
}

template <class V>
Metric metric_of(std::string_view id, V value) noexcept
{
    if constexpr (std::is_same_v<V, double>)
        return Metric::gauge(id, value);
    else
        return Metric::counter(id, value);
}

OwnedMetric owned(const Metric& m)
{
    return {std::string{m.id}, m.kind, m.value, m.delta};
}

std::uint64_t random_seed()
{
    std::random_device device;
    return static_cast<std::uint64_t>(device()) << 32 | device();
}

}  // namespace

template <>
MemoryMap::Table<double>& MemoryMap::Shard::table<double>() noexcept
{
    return gauges;
}
template <>
MemoryMap::Table<std::int64_t>& MemoryMap::Shard::table<std::int64_t>() noexcept
{
    return counters;
}
template <>
const MemoryMap::Table<double>& MemoryMap::Shard::table<double>() const noexcept
{
    return gauges;
}
template <>
const MemoryMap::Table<std::int64_t>& MemoryMap::Shard::table<std::int64_t>() const noexcept
{
    return counters;
}

MemoryMap::MemoryMap(MapOptions options)
    : seed_(random_seed()),
      mask_(std::bit_ceil(std::max<std::size_t>(options.shards.count, 1)) - 1),
      shards_(std::make_unique<Shard[]>(mask_ + 1)),
      ttl_(std::max<std::int64_t>(options.ttl.count(), 0)),
      clock_(options.clock),
      max_(options.max_metrics)
{
}

MemoryMap::~MemoryMap() = default;

Result<Metric> MemoryMap::update(const Metric& u, Stamp stamp)
{
    Result<Metric> out{Metric{}};
    update_into(u, stamp, out);
    return out;
}

void MemoryMap::update_into(const Metric& u, Stamp stamp, Result<Metric>& out)
{
    Metric& m = *out;
    // Word by word: the router has often just written `u` so (core::bytes::opaque).
    m.id = {core::bytes::opaque(u.id.data()), core::bytes::opaque(u.id.size())};
    m.kind = u.kind;
    const Key k = key(u.id);
    if (u.kind == Kind::gauge) {
        const Outcome o = change<double>(k, u.value, stamp);
        if (o.error == Errc::ok) [[likely]]
            m.value = std::bit_cast<double>(o.bits);
        else
            out = o.error;
        return;
    }
    const Outcome o = change<std::int64_t>(k, u.delta, stamp);
    if (o.error == Errc::ok)
        m.delta = static_cast<std::int64_t>(o.bits);
    else
        out = o.error;
}

template <class V>
MemoryMap::Outcome MemoryMap::change(const Key& k, V operand, Stamp stamp)
{
    Shard& s = shard(k);
    Table<V>& table = s.template table<V>();
    {
        detail::ReadGuard guard;
        if (Entry<V>* e = table.find(k.name, k.hash); e != nullptr && take(*e, s.batch_seq, false) == Took::held)
            return change_held(*e, operand, stamp);
    }
    // A new name, a batch changing the shard, or an entry removed meanwhile: under the mutex.
    std::lock_guard lock{s.mutex};
    Entry<V>* e = table.find(k.name, k.hash);
    if (e == nullptr) {
        if (!claim(1)) {
            note_refused();
            return {0, Errc::too_many_metrics};
        }
        try {
            table.insert(k.name, k.hash, operand, stamp.seq, stamp.time);
        } catch (...) {
            give_back_claim(1);
            throw;
        }
        return {bits_of(operand), Errc::ok};
    }
    take(*e, s.batch_seq, true);  // held: removal and batches need the mutex
    return change_held(*e, operand, stamp);
}

template <class V>
MemoryMap::Outcome MemoryMap::change_held(Entry<V>& e, V operand, Stamp stamp) const noexcept
{
    Outcome o;
    if (stamp.seq != 0 && e.seq() >= stamp.seq) {
        o.bits = bits_of(e.load());  // replayed: the change is already in it
    } else {
        const V current = is_expired(e.updated_at(), stamp.time) ? V{} : e.load();
        const Result<V> next = combine(current, operand);
        if (next) {
            e.set(*next, stamp.seq, stamp.time);
            o.bits = bits_of(*next);
        } else {
            o.error = next.error();
        }
    }
    give_back(e);
    return o;
}

// A batch, with every shard it touches locked (ascending order: no deadlock) and marked odd:
//  1. find each element's entry; make entries for new names (unpublished; one per distinct
//     name), and room for them in their tables. Nothing visible has changed yet, so running
//     out of memory here changes nothing.
//  2. change the counters in order, undoing them all if one overflows: behind odd shards, no one
//     else writes or reads those entries meanwhile.
//  3. store the gauges, which cannot fail, and publish the new names.
// The replay rule compares each element with its entry as the batch left it so far, which is the
// entry as it was before the batch for any state a log can hold (a batch is logged whole).
Result<void> MemoryMap::update_batch(std::span<const Metric> batch, std::vector<Metric>* stored, Stamp stamp)
{
    struct Undo {
        Entry<std::int64_t>* entry;
        std::int64_t total;
        std::uint64_t seq;
        std::int64_t time;
    };
    // Per-thread scratch reused across batches: steady-state batches allocate only `stored`.
    struct Scratch {
        std::vector<Key> keys;
        std::vector<std::uint64_t> touched;  ///< one bit per shard
        std::vector<std::mutex*> locks;
        std::vector<std::atomic<std::uint32_t>*> seqs;
        std::vector<Target> targets;
        std::vector<std::uint32_t> missing;  ///< elements whose name is new
        std::vector<std::uint32_t> fresh;    ///< elements that own a new entry
        std::vector<Undo> undo;
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
    if (!claim(fresh.size())) {
        note_refused();
        if (stored != nullptr)
            stored->clear();
        return Errc::too_many_metrics;
    }
    // Given back on every way out but success (out of memory, a counter overflow).
    struct Claim {
        MemoryMap& map;
        std::size_t n;
        ~Claim()
        {
            if (n != 0)
                map.give_back_claim(n);
        }
    } claimed{*this, fresh.size()};
    reserve_fresh(keys, targets, fresh);

    const auto seq_of = [&](std::size_t i) { return stamp.seq == 0 ? 0 : stamp.seq + i; };
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const Metric& m = batch[i];
        if (m.kind != Kind::counter)
            continue;
        Entry<std::int64_t>& e = *targets[i].counter;
        if (!targets[i].fresh)
            wait_for_holder(e);
        const std::uint64_t seq = seq_of(i);
        std::int64_t total = e.load();
        if (seq == 0 || e.seq() < seq) {
            const std::int64_t current = is_expired(e.updated_at(), stamp.time) ? 0 : total;
            const Result<std::int64_t> next = core::add_counter(current, m.delta);
            if (!next) {
                for (auto u = undo.rbegin(); u != undo.rend(); ++u)
                    u->entry->set(u->total, u->seq, u->time);
                if (stored != nullptr)
                    stored->clear();
                return next.error();
            }
            undo.push_back({&e, total, e.seq(), e.updated_at()});  // capacity reserved: cannot throw
            total = *next;
            e.set(total, seq, stamp.time);
        }
        if (stored != nullptr)
            (*stored)[i] = Metric::counter(m.id, total);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const Metric& m = batch[i];
        if (m.kind != Kind::gauge)
            continue;
        Entry<double>& e = *targets[i].gauge;
        if (!targets[i].fresh)
            wait_for_holder(e);
        const std::uint64_t seq = seq_of(i);
        if (seq == 0 || e.seq() < seq)
            e.set(m.value, seq, stamp.time);
        if (stored != nullptr)
            (*stored)[i] = Metric::gauge(m.id, e.load());
    }
    publish_fresh(keys, targets, fresh);
    claimed.n = 0;
    return {};
}

bool MemoryMap::claim(std::size_t n) noexcept
{
    if (n == 0)
        return true;
    const std::size_t cap = max_.load(std::memory_order_relaxed);
    if (cap == 0) {
        stored_.fetch_add(n, std::memory_order_relaxed);
        return true;
    }
    std::size_t now = stored_.load(std::memory_order_relaxed);
    do {
        if (n > cap || now > cap - n)
            return false;
    } while (!stored_.compare_exchange_weak(now, now + n, std::memory_order_relaxed));
    return true;
}

std::size_t MemoryMap::new_names(std::span<const Metric> batch) const
{
    thread_local std::vector<std::pair<Kind, std::string_view>> absent;
    absent.clear();
    {
        // Lock-free lookups, as an update's: no shard mutex per element.
        detail::ReadGuard guard;
        for (const Metric& m : batch) {
            const Key k = key(m.id);
            const Shard& s = shard(k);
            const bool held = m.kind == Kind::gauge ? s.gauges.find(k.name, k.hash) != nullptr
                                                    : s.counters.find(k.name, k.hash) != nullptr;
            if (!held)
                absent.emplace_back(m.kind, m.id);
        }
    }
    std::sort(absent.begin(), absent.end());
    return static_cast<std::size_t>(std::unique(absent.begin(), absent.end()) - absent.begin());
}

void MemoryMap::find_targets(std::span<const Metric> batch, std::span<const Key> keys, std::span<Target> targets,
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
void MemoryMap::make_fresh(std::span<const Metric> batch, std::span<const Key> keys, std::span<Target> targets,
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

void MemoryMap::reserve_fresh(std::span<const Key> keys, std::span<const Target> targets,
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

void MemoryMap::publish_fresh(std::span<const Key> keys, std::span<const Target> targets,
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

MemoryMap::Outcome MemoryMap::read(const Shard& s, Kind kind, const Key& k, std::int64_t now) const noexcept
{
    const auto found = [&](const auto* e) {
        if (e == nullptr || is_expired(e->updated_at(), now))
            return Outcome{0, Errc::not_found};
        return Outcome{bits_of(e->load()), Errc::ok};
    };
    if (kind == Kind::gauge)
        return found(s.gauges.find(k.name, k.hash));
    return found(s.counters.find(k.name, k.hash));
}

MemoryMap::Outcome MemoryMap::read_settled(Kind kind, std::string_view id) const
{
    const Key k = key(id);
    const Shard& s = shard(k);
    const std::int64_t now = ttl_ == 0 ? 0 : clock_();
    {
        // A sequence-lock read: it counts only if no batch changed the shard meanwhile.
        detail::ReadGuard guard;
        const std::uint32_t before = s.batch_seq.load(std::memory_order_acquire);
        if (before % 2 == 0) {
            const Outcome r = read(s, kind, k, now);
            std::atomic_thread_fence(std::memory_order_acquire);
            if (s.batch_seq.load(std::memory_order_relaxed) == before)
                return r;
        }
    }
    std::lock_guard lock{s.mutex};  // a batch is changing the shard: wait for it
    return read(s, kind, k, now);
}

Result<Metric> MemoryMap::get(Kind kind, std::string_view id) const
{
    Result<Metric> out{Metric{}};
    get_into(kind, id, out);
    return out;
}

void MemoryMap::get_into(Kind kind, std::string_view id, Result<Metric>& out) const
{
    const Outcome r = read_settled(kind, id);
    if (r.error != Errc::ok) {
        out = r.error;
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

Result<Metric> MemoryMap::remove(Kind kind, std::string_view id, Stamp stamp)
{
    const Key k = key(id);
    bool gone = false;
    return kind == Kind::gauge ? remove_in<double>(k, stamp, false, gone) : remove_in<std::int64_t>(k, stamp, false, gone);
}

bool MemoryMap::expire(Kind kind, std::string_view id, Stamp stamp)
{
    const Key k = key(id);
    bool gone = false;
    if (kind == Kind::gauge)
        (void)remove_in<double>(k, stamp, true, gone);
    else
        (void)remove_in<std::int64_t>(k, stamp, true, gone);
    return gone;
}

// Under the shard's mutex (no batch, insert or other removal meanwhile), with the entry's lock
// byte (no single update meanwhile): the entry is marked removed before it is unlinked, so that
// an update that found it lock-free retries under the mutex and makes a new entry.
template <class V>
Result<Metric> MemoryMap::remove_in(const Key& k, Stamp stamp, bool only_expired, bool& gone)
{
    Shard& s = shard(k);
    Table<V>& table = s.template table<V>();
    std::lock_guard lock{s.mutex};
    Entry<V>* e = table.find(k.name, k.hash);
    if (e == nullptr)
        return Errc::not_found;
    table.prepare_remove();  // may throw: before anything changes
    take(*e, s.batch_seq, true);
    const bool expired = is_expired(e->updated_at(), stamp.time);
    const bool replayed_over = stamp.seq != 0 && e->seq() > stamp.seq;
    if (replayed_over || (only_expired && !expired)) {
        give_back(*e);
        return Errc::not_found;
    }
    const Metric last = metric_of(k.name, e->load());
    e->lock().store(Entry<V>::removed, std::memory_order_release);
    table.remove(e, k.hash);
    give_back_claim(1);
    gone = true;
    if (expired) {
        expired_.fetch_add(1, std::memory_order_relaxed);
        return Errc::not_found;
    }
    removed_.fetch_add(1, std::memory_order_relaxed);
    return last;
}

std::vector<OwnedMetric> MemoryMap::list() const
{
    const std::int64_t now = ttl_ == 0 ? 0 : clock_();
    std::vector<OwnedMetric> out;
    out.reserve(size());  // once: an exact reserve per shard would reallocate for every shard
    {
        std::unique_lock gate{batch_gate_};
        for (std::size_t i = 0; i <= mask_; ++i) {
            const Shard& s = shards_[i];
            std::lock_guard lock{s.mutex};
            const auto add = [&](const auto& e) {
                // The lock byte makes the triple one change's: a single update may be at work.
                take(e, s.batch_seq, true);
                const auto value = e.load();
                const std::int64_t time = e.updated_at();
                const std::uint64_t seq = e.seq();
                give_back(e);
                if (is_expired(time, now))
                    return;
                OwnedMetric m = owned(metric_of(e.name(), value));
                m.updated_at = time;
                m.seq = seq;
                out.push_back(std::move(m));
            };
            s.gauges.for_each(add);
            s.counters.for_each(add);
        }
    }
    std::sort(out.begin(), out.end(), [](const OwnedMetric& a, const OwnedMetric& b) {
        if (const int c = a.id.compare(b.id); c != 0)
            return c < 0;
        return a.kind < b.kind;  // Kind::gauge < Kind::counter
    });
    return out;
}

std::size_t MemoryMap::size() const
{
    std::size_t n = 0;
    for (std::size_t i = 0; i <= mask_; ++i) {
        const Shard& s = shards_[i];
        std::lock_guard lock{s.mutex};
        n += s.gauges.size() + s.counters.size();
    }
    return n;
}

std::size_t MemoryMap::size(Kind kind) const
{
    std::size_t n = 0;
    for (std::size_t i = 0; i <= mask_; ++i) {
        const Shard& s = shards_[i];
        std::lock_guard lock{s.mutex};
        n += kind == Kind::gauge ? s.gauges.size() : s.counters.size();
    }
    return n;
}

void MemoryMap::clear()
{
    std::unique_lock gate{batch_gate_};
    for (std::size_t i = 0; i <= mask_; ++i) {
        Shard& s = shards_[i];
        std::lock_guard lock{s.mutex};
        give_back_claim(s.gauges.size() + s.counters.size());
        s.gauges.clear();
        s.counters.clear();
    }
}

void MemoryMap::restore(std::span<const OwnedMetric> metrics)
{
    clear();
    const std::int64_t now = clock_();
    for (const OwnedMetric& m : metrics) {
        const Key k = key(m.id);
        Shard& s = shard(k);
        const std::int64_t time = m.updated_at != 0 ? m.updated_at : now;
        std::lock_guard lock{s.mutex};
        const auto put = [&](auto& table, auto value) {
            if (auto* e = table.find(k.name, k.hash))
                e->set(value, m.seq, time);
            else {
                table.insert(k.name, k.hash, value, m.seq, time);
                stored_.fetch_add(1, std::memory_order_relaxed);  // what was stored comes back, cap or not
            }
        };
        if (m.kind == Kind::gauge)
            put(s.gauges, m.value);
        else
            put(s.counters, m.delta);
    }
}

std::uint64_t MemoryMap::max_seq() const
{
    std::uint64_t top = 0;
    for (std::size_t i = 0; i <= mask_; ++i) {
        const Shard& s = shards_[i];
        std::lock_guard lock{s.mutex};
        s.gauges.for_each([&](const auto& e) { top = std::max(top, e.seq()); });
        s.counters.for_each([&](const auto& e) { top = std::max(top, e.seq()); });
    }
    return top;
}

// The cursor names a slot: (shard * 2 + kind) in the high bits, the slot index in the low
// `slot_bits`. Tables never shrink while in use, so a slot index stays meaningful from one step
// to the next; an entry a grow moved behind the cursor is met on the next pass.
void MemoryMap::collect_expired(std::int64_t now, std::size_t budget, std::size_t& cursor,
                                std::vector<std::pair<Kind, std::string>>& out) const
{
    if (ttl_ == 0 || budget == 0)
        return;
    constexpr unsigned slot_bits = 40;
    constexpr std::size_t slot_mask = (std::size_t{1} << slot_bits) - 1;
    const std::size_t tables = 2 * (mask_ + 1);
    std::size_t table = cursor >> slot_bits;
    std::size_t slot = cursor & slot_mask;
    if (table >= tables)
        table = slot = 0;
    while (budget > 0) {
        const Shard& s = shards_[table / 2];
        const Kind kind = table % 2 == 0 ? Kind::gauge : Kind::counter;
        std::size_t end = 0;
        std::size_t capacity = 0;
        {
            std::lock_guard lock{s.mutex};
            const auto visit = [&](const auto& t) {
                capacity = t.capacity();
                end = t.for_range(slot, slot + budget, [&](const auto& e, std::size_t) {
                    if (is_expired(e.updated_at(), now))
                        out.emplace_back(kind, std::string{e.name()});
                });
            };
            if (kind == Kind::gauge)
                visit(s.gauges);
            else
                visit(s.counters);
        }
        budget -= std::min(budget, std::max<std::size_t>(end > slot ? end - slot : 0, 1));  // an empty table costs one
        if (end < capacity) {  // the budget ran out inside this table
            slot = end;
            break;
        }
        slot = 0;
        table = table + 1 == tables ? 0 : table + 1;
        if (table == 0)
            break;  // a pass is over: the next step starts the next one
    }
    cursor = table << slot_bits | slot;
}

void write_map_metrics(core::Exposition& out, const MemoryMap& map)
{
    out.gauge_family("metrics_server_stored_metrics", "Metrics stored now, by kind (expired ones not yet swept included).");
    out.sample("metrics_server_stored_metrics", {{"kind", "gauge"}}, static_cast<std::uint64_t>(map.size(Kind::gauge)));
    out.sample("metrics_server_stored_metrics", {{"kind", "counter"}},
               static_cast<std::uint64_t>(map.size(Kind::counter)));
    out.counter_family("metrics_server_metrics_deleted_total", "Metrics removed by DELETE requests.");
    out.sample("metrics_server_metrics_deleted_total", {}, map.removed());
    out.counter_family("metrics_server_metrics_expired_total", "Metrics removed because their TTL had passed.");
    out.sample("metrics_server_metrics_expired_total", {}, map.expired());
    out.counter_family("metrics_server_metrics_refused_total",
                       "Updates refused because they would add a metric beyond --max-metrics (507).");
    out.sample("metrics_server_metrics_refused_total", {}, map.refused());
}

}  // namespace storage
