#pragma once

#include "storage/detail/refusals.hpp"
#include "storage/detail/pg_pool.hpp"
#include "storage/storage.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace storage {

namespace detail {
class PgConnection;
struct PgParams;
struct PgReply;
}  // namespace detail

struct PostgresOptions {
    std::size_t pool_size = 4;  ///< connections for requests (at least 1); /ping has its own
    std::chrono::milliseconds connect_timeout{5000};  ///< one connection attempt, setup included
    /// One statement, from send to last result. Also the session's `statement_timeout` and
    /// `lock_timeout`, so that the server abandons a statement we no longer wait for.
    std::chrono::milliseconds query_timeout{5000};
    std::chrono::milliseconds ping_timeout{1000};     ///< the whole ping, connecting included
    /// One call: the wait for a pool slot, every attempt and the pauses between them.
    /// Past it the call fails with Errc::storage_busy.
    std::chrono::milliseconds request_timeout{10000};
    /// Calls waiting for a pool slot; one more fails at once with Errc::storage_busy.
    std::size_t max_waiting = 256;
    /// Pauses before the retries of an operation that failed for connection reasons.
    std::vector<std::chrono::milliseconds> retry_delays = default_retry_delays();
    /// A metric not updated for this long (by the database clock) is absent from every read, an
    /// update over it starts from scratch, and the sweep deletes it. 0: metrics never expire.
    std::chrono::milliseconds metric_ttl{0};
    /// Pause between two sweeps; 0: a quarter of metric_ttl, within [1 s, 1 min].
    std::chrono::milliseconds sweep_interval{0};
    /// Rows one sweep statement deletes at most: the bound on a step's locks and work.
    std::size_t sweep_chunk = 1000;
    /// Rows (gauges + counters) beyond which an update that would insert one is refused
    /// (Errc::too_many_metrics); 0: no cap. Counted per daemon: see stored().
    std::size_t max_metrics = 0;

    /// 1 s, 3 s, 5 s. A function, not a braced list: GCC 12 rejects ("array used as
    /// initializer") a coroutine that creates PostgresOptions{} when the member initializer
    /// holds an initializer_list.
    static std::vector<std::chrono::milliseconds> default_retry_delays();
};

/// PostgreSQL storage: gauges and counters in two tables, shared safely by several daemons.
///
/// libpq runs in non-blocking mode and its socket is awaited through Asio, so no call blocks a
/// server thread (except host name resolution inside libpq: prefer IP addresses in the DSN).
/// A fixed pool of connections, each lent to one operation at a time; waiters are served in
/// order. Connections are opened lazily and reopened after failures; a new connection applies
/// the schema migrations (once per process, serialised across daemons by an advisory lock) and
/// prepares every statement.
///
/// Every session runs with `statement_timeout` and `lock_timeout` set to `query_timeout`. A
/// statement still running at its deadline is cancelled (a cancel request, then its answer is
/// awaited briefly), so the backend never goes on working for nobody, and the call learns
/// whether it took effect. The connections held never exceed the pool plus the ping's.
///
/// Failures: connection-class errors (cannot connect, SQLSTATE 08xxx, 57P01-57P03, serialization
/// failures, deadlocks, cancelled statements and lock timeouts) had no effect and are retried
/// after `retry_delays`, within `request_timeout`; a write whose outcome is unknown (the
/// connection broke after it was sent, or a cancelled statement never answered) is not retried
/// and fails with Errc::outcome_unknown. A call that runs out of `request_timeout`, or finds
/// `max_waiting` calls already queued, fails with Errc::storage_busy having changed nothing.
/// Other failures are logged and returned as Errc::storage_unavailable (nothing changed);
/// counter overflow is Errc::counter_overflow and a name the database encoding rejects is
/// Errc::bad_name.
///
/// With `metric_ttl`, expiry is decided by the database clock against each row's `updated_at`,
/// and a timer on the storage's executor runs sweep() until close().
class PostgresStorage final : public Storage {
public:
    /// Checks the DSN (a key=value conninfo string or a postgres:// URI); a malformed one is
    /// logged with libpq's reason and fails with Errc::storage_unavailable.
    /// A well-formed DSN always yields a storage, even if the database cannot be reached yet: the
    /// daemon must keep running while the database is down, so that failure is only logged,
    /// requests fail (500) and ping() is false until it comes back; migrations then run on the
    /// first successful connection.
    /// `ex` runs the connections' sockets and timers; the storage must outlive every call.
    static core::awaitable<Result<std::unique_ptr<PostgresStorage>>> open(asio::any_io_executor ex,
                                                                          std::string dsn,
                                                                          PostgresOptions opts);

    /// Closes every connection. Precondition: no call in flight (await close() first).
    ~PostgresStorage() override;
    PostgresStorage(const PostgresStorage&) = delete;
    PostgresStorage& operator=(const PostgresStorage&) = delete;

    /// Every answer waits for the database.
    std::optional<Result<Metric>> try_now(const Request&) override { return std::nullopt; }
    bool answers_now() const override { return false; }
    /// One statement per request, so one round trip and one implicit transaction. Updates stamp
    /// `updated_at` with the database's `now()`, so that daemons sharing the tables agree on it.
    /// Op::update_batch: duplicate ids are merged in SQL (last gauge wins, counters summed) and
    /// the running totals come back in input order; a batch whose counters overflow, in total or
    /// at any step in input order, changes nothing. Op::remove: `DELETE ... RETURNING`; it is
    /// not retried once sent (a second try would answer not_found), so a broken connection
    /// makes it Errc::outcome_unknown like any write.
    core::awaitable<Result<Metric>> run(Request request) override;
    /// Live rows only, with `updated_at` in Unix milliseconds (the database clock).
    core::awaitable<Result<std::vector<OwnedMetric>>> list() override;
    /// `SELECT 1` on a dedicated connection within ping_timeout. That connection only sets its
    /// timeouts (no migration, no PREPARE: those wait for table locks), so a ping costs no
    /// backend beyond it. A failure after success (and the recovery) is logged once.
    core::awaitable<bool> ping() override;
    /// Waits for the calls in flight (each is bounded by its timeouts; no retry starts once
    /// closing), then closes the connections; later calls fail with Errc::storage_unavailable.
    core::awaitable<void> close() override;

    /// Deletes every expired row now, in statements of at most `sweep_chunk` rows, each on a
    /// pooled connection of its own (requests get the connection between chunks). Rows another
    /// daemon's sweep holds are skipped. Answers the rows deleted; the timer calls it every
    /// sweep_interval when metric_ttl is set. Nothing to do without a TTL.
    core::awaitable<Result<std::uint64_t>> sweep();

    /// Metrics this storage deleted on request (Op::remove).
    std::uint64_t removed() const noexcept { return removed_.load(std::memory_order_relaxed); }
    /// Expired metrics this storage met: deleted by its sweep, by a remove (answered not_found),
    /// or restarted by an update.
    std::uint64_t expired() const noexcept { return expired_.load(std::memory_order_relaxed); }
    /// Rows as this daemon counts them: both tables' count(*) at its first successful
    /// connection, plus the rows it inserted, minus those it deleted since (other daemons'
    /// changes are not seen).
    std::size_t stored() const noexcept { return stored_.load(std::memory_order_relaxed); }
    /// Updates refused at the cap since start.
    std::uint64_t refused() const noexcept { return refusals_.total(); }

    void write_self_metrics(core::Exposition& out) const override;

private:
    class Lease;

    /// Statement figures for the self-metrics; atomics, as a statement is slow next to them.
    struct Stats {
        static constexpr std::array<double, 12> bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                       0.05,   0.1,   0.25,   0.5,   1,    5};
        std::array<std::atomic<std::uint64_t>, bounds.size() + 1> buckets{};
        std::atomic<std::uint64_t> nanoseconds{0};
        std::atomic<std::uint64_t> failures{0};
        std::atomic<std::int64_t> in_use{0};

        void statement(std::chrono::steady_clock::duration took, bool ok) noexcept;
    };

    PostgresStorage(asio::any_io_executor ex, std::string dsn, PostgresOptions opts);

    using Deadline = std::chrono::steady_clock::time_point;

    /// A slot of the request pool before `deadline`: Errc::storage_busy when the deadline
    /// passes or too many calls wait, Errc::storage_unavailable once closed.
    core::awaitable<Result<Lease>> acquire(Deadline deadline);

    /// Opens `conn` unless it is usable and sets its session timeouts; `prepare`: also runs the
    /// migrations and prepares the statements unless done on this session.
    core::awaitable<detail::PgReply> setup(detail::PgConnection& conn, Deadline connect_deadline,
                                           Deadline query_deadline, bool prepare = true);
    core::awaitable<detail::PgReply> attempt(detail::PgConnection& conn, const char* statement,
                                             const detail::PgParams& params, Deadline deadline);
    /// Runs a prepared statement on a leased connection with the retry policy, within
    /// `deadline`; the result on success, else an error already logged.
    core::awaitable<Result<detail::PgReply>> execute(detail::PgConnection& conn, const char* statement,
                                                     const detail::PgParams& params, bool idempotent,
                                                     Deadline deadline);

    core::awaitable<Result<Metric>> update(Metric update);
    core::awaitable<Result<Metric>> read(Kind kind, std::string_view id);
    core::awaitable<Result<Metric>> remove(Kind kind, std::string_view id);
    core::awaitable<Result<void>> update_batch(std::span<const Metric> batch, std::vector<Metric>& stored);
    /// One sweep statement on `statement`'s table: the rows it deleted.
    core::awaitable<Result<std::uint64_t>> sweep_chunk(const char* statement);
    /// Calls sweep() every sweep interval until close(); runs on sweep_strand_ and holds
    /// `running_slot` of sweep_running_ until it ends.
    core::awaitable<void> sweep_timer_loop(std::size_t running_slot);

    asio::any_io_executor ex_;
    std::string dsn_;
    PostgresOptions opts_;
    std::vector<std::unique_ptr<detail::PgConnection>> connections_;  // indexed by pool_ slot
    std::unique_ptr<detail::PgConnection> ping_connection_;  // so that /ping never queues behind requests
    detail::SlotPool pool_;
    detail::SlotPool ping_pool_;  // one slot: pings take turns
    std::string session_settings_;  // SET statement_timeout, lock_timeout
    std::string prepare_script_;    // the statements, with metric_ttl written in
    asio::strand<asio::any_io_executor> sweep_strand_;  // sweep_timer_ is used only on it
    asio::steady_timer sweep_timer_;
    detail::SlotPool sweep_running_;  // one slot, held by the timer loop until it ends
    std::atomic<std::uint64_t> removed_{0};
    std::atomic<std::uint64_t> expired_{0};
    std::atomic<std::size_t> stored_{0};  // see stored(); with claims of updates in flight
    std::atomic<bool> counted_{false};     // stored_ has been read from the tables
    detail::Refusals refusals_;
    std::atomic<std::size_t> waiting_{0};  // calls waiting for a slot of pool_
    Stats stats_;
    std::atomic<bool> schema_ready_{false};
    /// Room for up to `n` rows under the cap: how many it claimed (all n without a cap).
    std::size_t claim(std::size_t n) noexcept;
    /// Gives back `n` claimed or deleted rows (never below 0: rows other daemons inserted).
    void forget(std::size_t n) noexcept;
    std::atomic<bool> closed_{false};
    std::atomic<bool> healthy_{true};  // last ping outcome, to log changes once
};

}  // namespace storage
