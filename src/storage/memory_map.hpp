#pragma once

#include "core/clock.hpp"
#include "core/exposition.hpp"
#include "core/metric.hpp"
#include "core/result.hpp"
#include "storage/detail/entry_table.hpp"
#include "storage/detail/name_hash.hpp"
#include "storage/detail/refusals.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace storage {

using core::Errc;
using core::Kind;
using core::Metric;
using core::OwnedMetric;
using core::Result;

/// When and in which order a change happened: what the write-ahead log records and replays.
struct Stamp {
    std::uint64_t seq = 0;  ///< 0: not logged (memory only); else the change's log sequence number
    std::int64_t time = 0;  ///< Unix milliseconds
};

/// Number of lock stripes of a MemoryMap (rounded up to a power of two, at least 1).
struct Shards {
    std::size_t count;
};

struct MapOptions {
    Shards shards{64};
    std::chrono::milliseconds ttl{0};  ///< 0: never expire
    core::Clock clock = &core::unix_millis;
    /// Stored entries (gauges + counters) beyond which an update that would add one is refused
    /// (Errc::too_many_metrics); 0: no cap.
    std::size_t max_metrics = 0;
};

namespace detail {

/// Where a batch element's update goes (one of the pointers); `fresh`: a new name, not yet in
/// its table.
struct BatchTarget {
    Entry<double>* gauge = nullptr;
    Entry<std::int64_t>* counter = nullptr;
    bool fresh = false;
};

}  // namespace detail

/// Gauges and counters in memory, sharded: a name's shard is hash(name) & (shards - 1); each
/// shard has two hash tables (name to entry, one per kind) and a std::mutex for its writers.
/// Each entry keeps its value with the time and log sequence number (Stamp) of its last change.
///
/// Updating or reading an existing metric takes no shard lock: the lookup runs inside a read
/// section (detail::ReadGuard) over tables whose slots writers change so that a reader is never
/// misled, and the entry's own lock byte orders the changes of that entry. So threads that update
/// different names share no written cache line, and threads that update the same name share
/// only that entry's line. The shard's mutex is taken to insert or remove a name and by batches.
/// A std::mutex rather than a spinlock: a batch holds it for the whole batch, and a waiter
/// should sleep, not burn the CPU the holder needs.
///
/// Batches stay atomic. A batch makes each of its shards' sequence numbers odd while it changes
/// them: a reader that sees one odd (or changed) waits for the batch on the shard's mutex, and so
/// does a single update, so that the totals the batch checked stay true.
///
/// Cap: an atomic count of stored entries is claimed before a new name is inserted (a batch
/// claims its distinct new names at once) and given back as entries leave, so updating an
/// existing metric never touches it. An expired entry the sweep has not removed still counts;
/// an update restarts it and adds nothing.
///
/// TTL: an entry whose last change is older than ttl counts as absent for every read and for an
/// update (which starts it from scratch); collect_expired() and expire() remove such entries in
/// bounded steps.
///
/// Thread-safe; every member may be called from any thread. Reading or updating an existing
/// metric performs no heap allocation (lookups hash a string_view once, and the hash is reused
/// inside the shard's table); inserting a new name copies it.
class MemoryMap {
public:
    explicit MemoryMap(MapOptions options = {});
    ~MemoryMap();
    MemoryMap(const MemoryMap&) = delete;
    MemoryMap& operator=(const MemoryMap&) = delete;

    /// Gauge replaces, counter adds; the metric after it (a counter's total in `delta`), its id
    /// viewing update.id. Each entry keeps (value, seq, updated_at) together: every change of an
    /// entry is made under the entry's lock, so that a reader (list) sees the three from one
    /// change. Replay rule: when stamp.seq != 0 and the entry's seq >= stamp.seq, nothing changes
    /// and the current metric is answered (the change is already in it). An entry last updated
    /// before stamp.time - ttl counts as absent (a counter restarts from the delta). Overflow:
    /// Errc::counter_overflow; a new name beyond max_metrics: Errc::too_many_metrics; nothing
    /// changed either way. The caller has validated name and value.
    Result<Metric> update(const Metric& update, Stamp stamp);

    /// update() writing its answer into `out` (which holds a Metric), field by field. GCC 12
    /// builds a Result<Metric> returned by value with narrow stores and copies it with 16-byte
    /// loads, a copy that stalls on every request (store forwarding fails; BM_UpdateHandler in
    /// bench/handlers_bench.cpp shows it): the hot path builds its answer in place instead.
    void update_into(const Metric& update, Stamp stamp, Result<Metric>& out);

    /// Atomic and in order (an id may repeat): every shard it touches is locked, in ascending
    /// index order, for the whole batch. Element i is stamped {stamp.seq == 0 ? 0 : stamp.seq + i,
    /// stamp.time} (a batch takes batch.size() consecutive sequence numbers), with the replay
    /// rule per element. If `stored` is not null it is cleared and receives, in input order, each
    /// metric as it stood right after its own update (ids view `batch`). A counter overflow
    /// anywhere: nothing changed (names it inserted are removed), Errc::counter_overflow. Its
    /// distinct new names beyond max_metrics: nothing changed, Errc::too_many_metrics.
    Result<void> update_batch(std::span<const Metric> batch, std::vector<Metric>* stored, Stamp stamp);

    /// Live (unexpired) value, `id` viewing the argument, else Errc::not_found.
    Result<Metric> get(Kind kind, std::string_view id) const;

    /// get() writing its answer into `out` (which holds a Metric), like update_into.
    void get_into(Kind kind, std::string_view id, Result<Metric>& out) const;

    /// Deletes; answers the last value (`id` viewing the argument). Unknown or expired at
    /// stamp.time: Errc::not_found (an expired entry is removed anyway). Replay rule: stamp.seq
    /// != 0 and entry seq > stamp.seq: nothing removed, Errc::not_found. Atomic with respect to
    /// batches and updates: an update either is in the answer or makes a new metric after it.
    Result<Metric> remove(Kind kind, std::string_view id, Stamp stamp);

    /// Removes the entry only if it is expired at stamp.time (the sweep's removal: an update
    /// that came after collect_expired() saved it). True when it removed one.
    bool expire(Kind kind, std::string_view id, Stamp stamp);

    /// Every live metric, sorted by id (gauge before counter), with updated_at and seq, each
    /// entry's triple read consistently; no batch half visible.
    std::vector<OwnedMetric> list() const;

    /// Stored entries, gauges plus counters (expired ones the sweep has not removed included).
    std::size_t size() const;
    /// size() as the cap counts it, read without a lock.
    std::size_t count() const noexcept { return stored_.load(std::memory_order_relaxed); }
    /// The cap (0: none). set_max_metrics(0) lifts it, e.g. while a durable store replays its
    /// log: what was stored once must come back whatever the cap is now.
    std::size_t max_metrics() const noexcept { return max_.load(std::memory_order_relaxed); }
    void set_max_metrics(std::size_t cap) noexcept { max_.store(cap, std::memory_order_relaxed); }
    /// Of `batch`'s distinct (kind, name), how many the map does not hold (expired entries not
    /// yet swept are held): the entries applying it would add, if no other insert or removal
    /// runs meanwhile (the durable store asks under its sequencer).
    std::size_t new_names(std::span<const Metric> batch) const;
    /// Counts (and logs, rate-limited) a refusal at the cap; the map calls it for its own.
    void note_refused() noexcept { refusals_.note(max_metrics()); }
    /// Updates refused at the cap since construction.
    std::uint64_t refused() const noexcept { return refusals_.total(); }
    /// Stored entries of one kind.
    std::size_t size(Kind kind) const;

    /// Replaces the content (restore): counters take `delta` as total; keeps seq and updated_at
    /// (updated_at 0 = unknown: stamped with the clock's now, so TTL counts from the restart). A
    /// repeated (id, kind) keeps the last one.
    void restore(std::span<const OwnedMetric> metrics);

    /// The largest seq of any entry (restart continues above it).
    std::uint64_t max_seq() const;

    /// One bounded step of the expiry sweep: visits at most `budget` slots from `cursor` (which
    /// it advances, wrapping to 0 at the end) and appends to `out` the (kind, id) of entries
    /// expired at `now`; it removes nothing (the caller removes each through expire() or
    /// remove(), logged first when there is a log). Cheap when ttl is 0.
    void collect_expired(std::int64_t now, std::size_t budget, std::size_t& cursor,
                         std::vector<std::pair<Kind, std::string>>& out) const;

    std::chrono::milliseconds ttl() const { return std::chrono::milliseconds{ttl_}; }
    core::Clock clock() const { return clock_; }

    /// Metrics removed by remove() (live when removed), and entries removed because they had
    /// expired (by remove() or expire()), since construction.
    std::uint64_t removed() const { return removed_.load(std::memory_order_relaxed); }
    std::uint64_t expired() const { return expired_.load(std::memory_order_relaxed); }

private:
    /// A name with its hash computed once: the shard and the table's probe both use it.
    struct Key {
        std::string_view name;
        std::size_t hash;
    };

    template <class V>
    using Table = detail::EntryTable<V>;

    /// One shard; cache-line aligned so that neighbouring shards do not false-share.
    struct alignas(64) Shard {
        mutable std::mutex mutex;  ///< held to insert, remove, by batches, and by readers a batch holds up
        /// Odd while a batch changes this shard (its writes are not yet all done).
        std::atomic<std::uint32_t> batch_seq{0};
        Table<double> gauges;
        Table<std::int64_t> counters;

        template <class V>
        Table<V>& table() noexcept;
        template <class V>
        const Table<V>& table() const noexcept;
    };

    using Target = detail::BatchTarget;

    /// A value as read or written: a gauge's bits or a counter, and an error (Errc::ok: none).
    /// 16 bytes, so that it comes back in registers (the stall update_into avoids).
    struct Outcome {
        std::uint64_t bits = 0;
        Errc error = Errc::ok;
    };

    /// A single update of one entry (gauge or counter).
    template <class V>
    Outcome change(const Key& k, V operand, Stamp stamp);
    /// The change itself, with the entry's lock byte held; releases it.
    template <class V>
    Outcome change_held(detail::Entry<V>& e, V operand, Stamp stamp) const noexcept;

    /// The current live value, never part of a batch: read without a lock unless a batch is
    /// changing the shard. `now` is read from the clock only when there is a ttl.
    Outcome read_settled(Kind kind, std::string_view id) const;
    /// The live value, read without a lock (inside a ReadGuard) or under the shard's mutex.
    Outcome read(const Shard& s, Kind kind, const Key& k, std::int64_t now) const noexcept;

    /// remove() and expire(); `gone`: an entry was removed.
    template <class V>
    Result<Metric> remove_in(const Key& k, Stamp stamp, bool only_expired, bool& gone);

    bool is_expired(std::int64_t updated_at, std::int64_t now) const noexcept
    {
        return ttl_ != 0 && updated_at < now - ttl_;
    }

    /// Each element's entry, or the element's index in `missing`.
    void find_targets(std::span<const Metric> batch, std::span<const Key> keys, std::span<Target> targets,
                      std::vector<std::uint32_t>& missing) const;
    void make_fresh(std::span<const Metric> batch, std::span<const Key> keys, std::span<Target> targets,
                    std::vector<std::uint32_t>& missing, std::vector<std::uint32_t>& fresh);  // sorts missing
    void reserve_fresh(std::span<const Key> keys, std::span<const Target> targets, std::span<const std::uint32_t> fresh);
    void publish_fresh(std::span<const Key> keys, std::span<const Target> targets,
                       std::vector<std::uint32_t>& fresh) noexcept;
    /// Removes every entry (restore's first step).
    void clear();
    /// Adds n to the count unless that passes the cap (false: nothing claimed).
    bool claim(std::size_t n) noexcept;
    void give_back_claim(std::size_t n) noexcept { stored_.fetch_sub(n, std::memory_order_relaxed); }

    Key key(std::string_view name) const noexcept { return {name, detail::name_hash(name, seed_)}; }
    Shard& shard(const Key& k) const noexcept { return shards_[k.hash & mask_]; }

    std::uint64_t seed_;  ///< of name_hash, random per map
    std::size_t mask_;
    std::unique_ptr<Shard[]> shards_;
    std::int64_t ttl_;  ///< milliseconds, 0: never
    core::Clock clock_;
    /// Batches hold it shared, list() and clear() exclusively: a listing (hence a snapshot)
    /// never shows part of a batch. Single updates do not take it: each is one atomic step.
    mutable std::shared_mutex batch_gate_;
    std::atomic<std::uint64_t> removed_{0};
    std::atomic<std::uint64_t> expired_{0};
    /// Entries in the tables plus claims not yet inserted; its own cache line: inserts and
    /// removals write it, updates of existing names do not read it.
    alignas(64) std::atomic<std::size_t> stored_{0};
    std::atomic<std::size_t> max_{0};
    detail::Refusals refusals_;
};

/// The self-metrics families of a map (stored by kind, deleted, expired, refused): every memory store
/// writes them.
void write_map_metrics(core::Exposition& out, const MemoryMap& map);

}  // namespace storage
