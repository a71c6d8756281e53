#pragma once

#include "storage/memory_map.hpp"
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
    std::optional<Result<Metric>> try_now(const Request& request) override;
    core::awaitable<Result<Metric>> run(Request request) override;
    core::awaitable<bool> ping() override;
    core::awaitable<void> close() override;

private:
    friend class storage::MemoryStorage;
    MemoryStorageAsync() = default;
    MemoryStorage& self() noexcept;
};

}  // namespace detail

// The synchronous members below intentionally hide the async overloads of the base (see
// detail::MemoryStorageAsync); clang and GCC >= 13 would warn about exactly that.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverloaded-virtual"

/// The memory-only storage: a MemoryMap, stamped with its clock and no log sequence number.
/// Thread-safe.
class MemoryStorage final : public detail::MemoryStorageAsync {
public:
    explicit MemoryStorage(MapOptions options = {});
    explicit MemoryStorage(Shards shards) : MemoryStorage(MapOptions{shards}) {}
    ~MemoryStorage() override;
    MemoryStorage(const MemoryStorage&) = delete;
    MemoryStorage& operator=(const MemoryStorage&) = delete;

    MemoryMap& map() noexcept { return map_; }
    const MemoryMap& map() const noexcept { return map_; }

    /// The stamp of a change made now: no log sequence number, the clock's time.
    Stamp stamp() const noexcept { return {0, map_.clock()()}; }

    // TRANSITIONAL: the synchronous interface PersistentStorage uses, forwarding to map().
    Result<Metric> apply(const Metric& update) { return map_.update(update, stamp()); }
    Result<void> apply_batch(std::span<const Metric> batch, std::vector<Metric>* stored)
    {
        return map_.update_batch(batch, stored, stamp());
    }
    Result<Metric> get(Kind kind, std::string_view id) const { return map_.get(kind, id); }
    std::vector<OwnedMetric> list() const { return map_.list(); }
    std::size_t size() const { return map_.size(); }
    void restore(std::span<const OwnedMetric> metrics) { map_.restore(metrics); }
    double gauge(std::string_view id) const;
    std::int64_t counter(std::string_view id) const;

private:
    friend class detail::MemoryStorageAsync;

    MemoryMap map_;
};

#pragma GCC diagnostic pop

}  // namespace storage
