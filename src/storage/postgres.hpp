#pragma once

#include "storage/detail/pg_pool.hpp"
#include "storage/storage.hpp"

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

    core::awaitable<Result<Metric>> run(Request request) override;
    core::awaitable<Result<Metric>> apply(Metric update);
    /// One statement, so one round trip and one implicit transaction: duplicate ids are merged
    /// in SQL (last gauge wins, counters summed) and the running totals come back in input order.
    /// A batch whose counters overflow, in total or at any step in input order, changes nothing.
    core::awaitable<Result<void>> apply_batch(std::span<const Metric> batch,
                                              std::vector<Metric>& stored);
    core::awaitable<Result<Metric>> get(Kind kind, std::string_view id);
    core::awaitable<Result<std::vector<OwnedMetric>>> list() override;
    /// `SELECT 1` on a dedicated connection within ping_timeout. That connection only sets its
    /// timeouts (no migration, no PREPARE: those wait for table locks), so a ping costs no
    /// backend beyond it. A failure after success (and the recovery) is logged once.
    core::awaitable<bool> ping() override;
    /// Waits for the calls in flight (each is bounded by its timeouts; no retry starts once
    /// closing), then closes the connections; later calls fail with Errc::storage_unavailable.
    core::awaitable<void> close() override;

private:
    class Lease;

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
    core::awaitable<Result<detail::PgReply>> run(detail::PgConnection& conn, const char* statement,
                                                 const detail::PgParams& params, bool idempotent,
                                                 Deadline deadline);

    asio::any_io_executor ex_;
    std::string dsn_;
    PostgresOptions opts_;
    std::vector<std::unique_ptr<detail::PgConnection>> connections_;  // indexed by pool_ slot
    std::unique_ptr<detail::PgConnection> ping_connection_;  // so that /ping never queues behind requests
    detail::SlotPool pool_;
    detail::SlotPool ping_pool_;  // one slot: pings take turns
    std::string session_settings_;  // SET statement_timeout, lock_timeout
    std::atomic<std::size_t> waiting_{0};  // calls waiting for a slot of pool_
    std::atomic<bool> schema_ready_{false};
    std::atomic<bool> closed_{false};
    std::atomic<bool> healthy_{true};  // last ping outcome, to log changes once
};

}  // namespace storage
