#pragma once

#include "storage/memory_map.hpp"
#include "storage/storage.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace storage {

/// The memory-only storage (no snapshot file): a MemoryMap whose changes are stamped with the
/// map's clock and no log sequence number. Every operation answers at once (try_now). Expired
/// metrics are removed by sweep_expired(), in bounded steps. Thread-safe.
class MemoryStorage final : public Storage {
public:
    explicit MemoryStorage(MapOptions options = {});
    ~MemoryStorage() override;
    MemoryStorage(const MemoryStorage&) = delete;
    MemoryStorage& operator=(const MemoryStorage&) = delete;

    MemoryMap& map() noexcept { return map_; }
    const MemoryMap& map() const noexcept { return map_; }

    /// The stamp of a change made now: no log sequence number, the clock's time.
    Stamp stamp() const noexcept { return {0, map_.clock()()}; }

    std::optional<Result<Metric>> try_now(const Request& request) override;
    bool answers_now() const override { return true; }
    core::awaitable<Result<Metric>> run(Request request) override;
    core::awaitable<Result<std::vector<OwnedMetric>>> list() override;
    core::awaitable<bool> ping() override;
    core::awaitable<void> close() override;
    void write_self_metrics(core::Exposition& out) const override;

    /// One step of the expiry sweep: looks at `budget` slots of the map from where the last step
    /// stopped and removes the metrics expired among them. Returns how many it removed.
    std::size_t sweep_step(std::size_t budget);

    /// Runs sweep_step(budget) every `period` until close() or the executor stops. Spawn it once
    /// (with ttl > 0); `this` must outlive it.
    core::awaitable<void> sweep_expired(std::chrono::milliseconds period, std::size_t budget);

private:
    MemoryMap map_;
    std::mutex sweep_mutex_;  ///< one sweep step at a time: they share the cursor and the list
    std::size_t sweep_cursor_ = 0;
    std::vector<std::pair<Kind, std::string>> expired_;  ///< a step's finds, reused
    std::atomic<bool> closed_{false};
};

}  // namespace storage
