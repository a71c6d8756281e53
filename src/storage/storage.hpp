#pragma once

#include "core/asio.hpp"
#include "core/metric.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace storage {

using core::Errc;
using core::Kind;
using core::Metric;
using core::OwnedMetric;
using core::Result;

/// The one operation a request asks of the storage.
enum class Op : std::uint8_t {
    update,        ///< gauge replaces, counter adds; answers the metric after it (a counter's total in `delta`)
    get,           ///< answers the current value; unknown: Errc::not_found
    remove,        ///< deletes one metric and answers its last value; unknown: Errc::not_found
    update_batch,  ///< atomically and in order; each element's result goes to `stored`; the answer's metric is unused
};

/// An operation and its operands. `Metric::id` and `batch` view the caller's request buffer and
/// must stay valid until the answer; ids in answers view the same input.
struct Request {
    Op op = Op::get;
    Metric metric{};                        ///< update: the update; get, remove: kind and id
    std::span<const Metric> batch{};        ///< update_batch: validated elements, an id may repeat
    std::vector<Metric>* stored = nullptr;  ///< update_batch: cleared, then each element as it stood right after its own update
};

/// What handlers use: memory (optionally with a log and snapshots) or PostgreSQL. Thread-safe:
/// called from any strand. Answers: success means applied, and durable as the storage's mode
/// promises; an error means nothing changed (except Errc::outcome_unknown).
class Storage {
public:
    virtual ~Storage() = default;

    /// Runs `request` at once when it needs no waiting (memory; a log on an interval) and
    /// returns the answer; else std::nullopt, nothing has run, and the caller awaits run().
    /// The default: never at once.
    virtual std::optional<Result<Metric>> try_now(const Request&) { return std::nullopt; }
    /// try_now never answers std::nullopt: a handler may run as a plain call, without a
    /// coroutine frame (server::Handler::answers_now).
    virtual bool answers_now() const { return false; }
    /// Runs `request`, waiting as needed.
    virtual core::awaitable<Result<Metric>> run(Request request) = 0;

    /// Every live metric (expired ones excluded), sorted by (id, kind), gauges before counters
    /// for the same id, each with its update time.
    virtual core::awaitable<Result<std::vector<OwnedMetric>>> list() = 0;

    /// Healthy and reachable, and its log (if any) is writable.
    virtual core::awaitable<bool> ping() = 0;

    /// Graceful stop: flush and close. Idempotent.
    virtual core::awaitable<void> close() = 0;
};

}  // namespace storage
