#pragma once

#include "core/asio.hpp"
#include "core/metric.hpp"
#include "core/result.hpp"

#include <optional>
#include <span>
#include <vector>

namespace storage {

using core::Errc;
using core::Kind;
using core::Metric;
using core::OwnedMetric;
using core::Result;

/// What handlers use: the memory store (optionally with snapshots) or PostgreSQL.
/// All methods are coroutines so that a database never blocks a server thread; memory
/// implementations complete without suspending. Thread-safe: called from any strand.
/// `Metric::id` views passed in must stay valid until the returned awaitable completes
/// (they point into the caller's request buffer); views in results point into the same input.
class Storage {
public:
    virtual ~Storage() = default;

    /// Applies one update (gauge replaces, counter adds) and returns the metric after it
    /// (a counter carries its new total in `delta`). Overflow: Errc::counter_overflow, nothing changed.
    virtual core::awaitable<Result<Metric>> apply(Metric update) = 0;

    /// Applies a whole batch atomically, in order (an id may repeat); `stored` receives, in input
    /// order, each metric as it stood right after its own update. Any failure: nothing changed.
    /// Callers validate names and values first; storage checks only overflow.
    virtual core::awaitable<Result<void>> apply_batch(std::span<const Metric> batch,
                                                      std::vector<Metric>& stored) = 0;

    /// The current value; unknown metric: Errc::not_found. `id` as given.
    virtual core::awaitable<Result<Metric>> get(Kind kind, std::string_view id) = 0;

    /// apply(), get() and apply_batch() done at once when they need no waiting (memory;
    /// snapshots on an interval), else std::nullopt and the caller awaits the coroutine: a
    /// handler on the memory store then spends no coroutine frame on storage.
    virtual std::optional<Result<Metric>> apply_now(const Metric&) { return std::nullopt; }
    virtual std::optional<Result<Metric>> get_now(Kind, std::string_view) { return std::nullopt; }
    virtual std::optional<Result<void>> apply_batch_now(std::span<const Metric>, std::vector<Metric>&)
    {
        return std::nullopt;
    }
    /// The three *_now calls above never answer std::nullopt: a handler may then run as a plain
    /// call, without any coroutine frame (server::Handler::answers_now).
    virtual bool answers_now() const { return false; }

    /// Every metric, sorted by (id, kind), gauges before counters for the same id.
    virtual core::awaitable<Result<std::vector<OwnedMetric>>> list() = 0;

    /// Healthy and reachable (memory: always).
    virtual core::awaitable<bool> ping() = 0;

    /// Graceful stop: flush (final snapshot) and close connections. Idempotent.
    virtual core::awaitable<void> close() = 0;
};

}  // namespace storage
