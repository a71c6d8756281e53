#pragma once

#include "storage/detail/entry_table.hpp"
#include "storage/detail/name_hash.hpp"
#include "storage/storage.hpp"

#include <atomic>
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace storage {

class MemoryStorage;

namespace detail {

/// The async `Storage` face of MemoryStorage: each coroutine calls the synchronous version and
/// completes without suspending. A separate base only because C++ cannot overload on the return
/// type: MemoryStorage's synchronous apply/get/list (different parameter lists or const) hide
/// these, so `store.apply(m)` on a MemoryStorage is synchronous and on a `Storage&` is async.
class MemoryStorageAsync : public Storage {
public:
    core::awaitable<Result<Metric>> apply(Metric update) override;
    core::awaitable<Result<void>> apply_batch(std::span<const Metric> batch, std::vector<Metric>& stored) override;
    core::awaitable<Result<Metric>> get(Kind kind, std::string_view id) override;
    std::optional<Result<Metric>> apply_now(const Metric& update) override;
    std::optional<Result<Metric>> get_now(Kind kind, std::string_view id) override;
    std::optional<Result<void>> apply_batch_now(std::span<const Metric> batch, std::vector<Metric>& stored) override;
    bool answers_now() const override { return true; }
    core::awaitable<Result<std::vector<OwnedMetric>>> list() override;
    core::awaitable<bool> ping() override;
    core::awaitable<void> close() override;

private:
    friend class storage::MemoryStorage;
    MemoryStorageAsync() = default;
    MemoryStorage& self() noexcept;
};

/// Where a MemoryStorage batch element's update goes (one of the pointers); `fresh`: a new name,
/// not yet in its table.
struct BatchTarget {
    Entry<double>* gauge = nullptr;
    Entry<std::int64_t>* counter = nullptr;
    bool fresh = false;
};

}  // namespace detail

/// Number of lock stripes of a MemoryStorage (rounded up to a power of two, at least 1).
struct Shards {
    std::size_t count;
};

// The synchronous members below intentionally hide the async overloads of the base (see
// detail::MemoryStorageAsync); clang and GCC >= 13 would warn about exactly that.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverloaded-virtual"

/// Gauges and counters in memory, sharded: a name's shard is hash(name) & (shards - 1); each
/// shard has two hash tables (name to value, one per kind) and a std::mutex for its writers.
///
/// Updating or reading an existing metric takes no lock: the lookup runs inside a read section
/// (detail::ReadGuard) over tables that writers change only by filling empty slots, and the
/// value is an atomic. So threads that update different names share no written cache line, and
/// threads that update the same name share only that value's line. The mutex is taken to
/// insert a name and by batches. A std::mutex rather than a spinlock: a batch holds it for
/// the whole batch, and a waiter should sleep, not burn the CPU the holder needs.
///
/// Batches stay atomic. A batch makes each of its shards' sequence numbers odd while it changes
/// them: a reader that sees one odd (or changed) waits for the batch on the shard's mutex, and so
/// does a single counter update, so that the totals the batch checked stay true.
///
/// Thread-safe; every member may be called from any thread. Reading or updating an existing
/// metric performs no heap allocation (lookups hash a string_view once, and the hash is reused
/// inside the shard's table); inserting a new name copies it.
class MemoryStorage final : public detail::MemoryStorageAsync {
public:
    explicit MemoryStorage(Shards shards = Shards{64});
    ~MemoryStorage() override;
    MemoryStorage(const MemoryStorage&) = delete;
    MemoryStorage& operator=(const MemoryStorage&) = delete;

    /// Gauge: replaces; counter: adds `update.delta`. Returns the metric after the update (a
    /// counter's new total in `delta`), its `id` viewing `update.id`. Overflow:
    /// Errc::counter_overflow, nothing changed. The caller has validated name and value.
    Result<Metric> apply(const Metric& update);

    /// Applies `batch` atomically and in order (an id may repeat): every shard it touches is
    /// locked, in ascending index order, for the whole batch. If `stored` is not null it is
    /// cleared and receives, in input order, each metric as it stood right after its own update
    /// (ids view `batch`). A counter overflow anywhere: every change of the batch is undone
    /// (names it inserted are removed) and Errc::counter_overflow is returned.
    Result<void> apply_batch(std::span<const Metric> batch, std::vector<Metric>* stored);

    /// The current value, `id` viewing the argument; unknown: Errc::not_found.
    Result<Metric> get(Kind kind, std::string_view id) const;

    /// Every metric, sorted by id, a gauge before a counter of the same name. A consistent cut:
    /// no batch is half visible in it (batches are excluded while the shards are copied).
    std::vector<OwnedMetric> list() const;

    /// Number of stored metrics (gauges plus counters).
    std::size_t size() const;

    void clear();

    /// Replaces the whole content with `metrics` (snapshot load): gauges take `value`, counters
    /// take `delta` as their total. A repeated (id, kind) keeps the last one.
    void restore(std::span<const OwnedMetric> metrics);

    /// Test and benchmark conveniences: the value, or 0 when absent.
    double gauge(std::string_view id) const;
    std::int64_t counter(std::string_view id) const;

private:
    friend class detail::MemoryStorageAsync;  // its *_now answers are built in place

    /// A name with its hash computed once: the shard and the table's probe both use it.
    struct Key {
        std::string_view name;
        std::size_t hash;
    };

    template <class V>
    using Map = detail::EntryTable<V>;

    /// One shard; cache-line aligned so that neighbouring shards do not false-share.
    struct alignas(64) Shard {
        mutable std::mutex mutex;  ///< held to insert, by batches, and by readers a batch holds up
        /// Odd while a batch changes this shard (its writes are not yet all done).
        std::atomic<std::uint32_t> batch_seq{0};
        Map<double> gauges;
        Map<std::int64_t> counters;
    };

    using Target = detail::BatchTarget;

    void set_gauge(const Key& k, double value);
    /// The counter's new total. Results of at most 16 bytes come back in registers (see apply_into).
    Result<std::int64_t> add_counter(const Key& k, std::int64_t delta);
    /// A value as read: a gauge's bits or a counter, and whether the metric exists. 16 bytes,
    /// so that it comes back in registers: a Result<Metric> returned through memory and copied
    /// at once stalled every get (store forwarding fails from narrow stores to wide loads).
    struct Reading {
        std::uint64_t bits = 0;
        bool found = false;
    };
    /// The current value, read without a lock (inside a ReadGuard) or under the shard's mutex.
    static Reading read(const Shard& s, Kind kind, const Key& k) noexcept;
    /// The current value, never part of a batch: read without a lock unless a batch is
    /// changing the shard.
    Reading read_settled(Kind kind, std::string_view id) const;

    // apply and get, writing their answer into `out` (which holds a Metric) field by field: the
    // *_now answers are built in place in the optional they return. GCC 12 builds a
    // Result<Metric> returned by value with narrow stores and copies it with 16-byte loads,
    // and that copy stalled every request (store forwarding fails).
    void apply_into(const Metric& update, Result<Metric>& out);
    void get_into(Kind kind, std::string_view id, Result<Metric>& out) const;

    /// Each element's entry, or the element's index in `missing`.
    void find_targets(std::span<const Metric> batch, std::span<const Key> keys, std::span<Target> targets,
                      std::vector<std::uint32_t>& missing) const;
    void make_fresh(std::span<const Metric> batch, std::span<const Key> keys, std::span<Target> targets,
                    std::vector<std::uint32_t>& missing, std::vector<std::uint32_t>& fresh);  // sorts missing
    void reserve_fresh(std::span<const Key> keys, std::span<const Target> targets, std::span<const std::uint32_t> fresh);
    void publish_fresh(std::span<const Key> keys, std::span<const Target> targets,
                       std::vector<std::uint32_t>& fresh) noexcept;

    Key key(std::string_view name) const noexcept { return {name, detail::name_hash(name, seed_)}; }
    Shard& shard(const Key& k) const noexcept { return shards_[k.hash & mask_]; }

    std::uint64_t seed_;  ///< of name_hash, random per store
    std::size_t mask_;
    std::unique_ptr<Shard[]> shards_;
    /// Batches hold it shared, list() and clear() exclusively: a listing (hence a snapshot)
    /// never shows part of a batch. Single updates do not take it: each is one atomic step.
    mutable std::shared_mutex batch_gate_;
};

#pragma GCC diagnostic pop

}  // namespace storage
