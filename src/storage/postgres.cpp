#include "storage/postgres.hpp"

#include "core/asio.hpp"
#include "core/log.hpp"

#include <libpq-fe.h>

#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cassert>
#include <climits>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <optional>
#include <thread>
#include <tuple>
#include <unistd.h>

namespace storage {

using Clock = std::chrono::steady_clock;

namespace detail {

namespace {

// Built-in type OIDs (pg_type.dat); fixed since PostgreSQL 7.
constexpr unsigned text_oid = 25;
constexpr unsigned int8_oid = 20;
constexpr unsigned float8_oid = 701;

void put_be32(std::string& out, std::uint32_t v)
{
    for (int shift = 24; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void put_be64(char* out, std::uint64_t v)
{
    for (int i = 7; i >= 0; --i) {
        out[i] = static_cast<char>(v & 0xff);
        v >>= 8;
    }
}

std::uint64_t get_be64(const char* in)
{
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v = (v << 8) | static_cast<unsigned char>(in[i]);
    return v;
}

// A one-dimensional array parameter in PostgreSQL's binary format: ndim, has-nulls flag,
// element type, then (length, lower bound) of the dimension; an empty array has no dimension.
// Elements follow as (int32 length, bytes). Binary avoids any quoting of names.
void begin_array(std::string& out, unsigned element_oid, std::size_t count)
{
    out.clear();
    put_be32(out, count == 0 ? 0 : 1);
    put_be32(out, 0);
    put_be32(out, element_oid);
    if (count != 0) {
        put_be32(out, static_cast<std::uint32_t>(count));
        put_be32(out, 1);
    }
}

void put_element(std::string& out, std::string_view bytes)
{
    put_be32(out, static_cast<std::uint32_t>(bytes.size()));
    out.append(bytes);
}

void put_element(std::string& out, std::uint64_t bits)
{
    std::array<char, 8> be;
    put_be64(be.data(), bits);
    put_element(out, std::string_view{be.data(), be.size()});
}

// libpq messages end with a newline and may span lines; logs want one line.
std::string one_line(const char* message)
{
    std::string s = message ? message : "";
    std::replace_if(s.begin(), s.end(), [](char c) { return c == '\n' || c == '\t'; }, ' ');
    while (!s.empty() && s.back() == ' ')
        s.pop_back();
    return s;
}

}  // namespace

struct PgResultDeleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

namespace {

// How long a cancelled statement gets to answer; beyond it the connection is dropped and the
// outcome is unknown (the server's statement_timeout still ends the statement).
constexpr auto cancel_grace = std::chrono::seconds{1};

// Cancel requests still running on their threads (see send_cancel).
std::atomic<int> cancels_in_flight{0};
constexpr int max_cancels_in_flight = 16;

// Asks the server to cancel the statement running on `conn`. libpq 15 (Debian 12) has only the
// blocking PQcancel (a connect and a send; the non-blocking PQcancelStart is libpq 17), so it
// runs on a thread of its own. An unreachable server could hold such a thread for minutes:
// their number is capped, and beyond the cap the session's statement_timeout ends the statement.
void send_cancel(PGconn* conn)
{
    if (cancels_in_flight.fetch_add(1) >= max_cancels_in_flight) {
        cancels_in_flight.fetch_sub(1);
        core::log::warn("postgres: {} cancel requests pending, relying on statement_timeout", max_cancels_in_flight);
        return;
    }
    PGcancel* cancel = PQgetCancel(conn);
    if (!cancel) {
        cancels_in_flight.fetch_sub(1);
        return;
    }
    try {
        std::thread([cancel] {
            std::array<char, 256> error{};
            if (PQcancel(cancel, error.data(), static_cast<int>(error.size())) == 0)
                core::log::warn("postgres: cancel request failed: {}", one_line(error.data()));
            PQfreeCancel(cancel);
            cancels_in_flight.fetch_sub(1);
        }).detach();
    } catch (const std::system_error& e) {
        core::log::warn("postgres: cannot send a cancel request: {}", e.what());
        PQfreeCancel(cancel);
        cancels_in_flight.fetch_sub(1);
    }
}

}  // namespace

/// Why an attempt failed: decides whether it may be retried.
enum class Failure {
    none,
    unreachable,  ///< could not connect, or the connection broke before the statement was complete
    aborted,      ///< the server aborted the statement (connection-class reasons, cancelled, lock
                  ///< timeout): it had no effect
    ambiguous,    ///< the connection broke after the statement was sent: it may have taken effect
    timeout,      ///< the deadline passed and the cancelled statement did not answer in time: it
                  ///< may have taken effect (the connection is dropped)
    statement,    ///< the server rejected the statement (SQLSTATE in `result`)
};

struct PgReply {
    Failure failure = Failure::none;
    PgResult result;     ///< on success the last result; on Failure::statement the error
    std::string reason;  ///< for logs, when failed
};

/// Parameters of one prepared statement, all in binary format; views into the caller's buffers.
struct PgParams {
    static constexpr int capacity = 5;
    int count = 0;
    std::array<const char*, capacity> values{};
    std::array<int, capacity> lengths{};
    std::array<int, capacity> formats{1, 1, 1, 1, 1};

    void add(std::string_view bytes)
    {
        assert(count < capacity && bytes.size() <= INT_MAX);
        // A null pointer would mean SQL NULL.
        values[static_cast<std::size_t>(count)] = bytes.data() ? bytes.data() : "";
        lengths[static_cast<std::size_t>(count)] = static_cast<int>(bytes.size());
        ++count;
    }
};

/// One libpq connection, used by one coroutine at a time (whoever holds its pool slot).
///
/// Asio waits on a duplicate of libpq's socket, never on libpq's own descriptor: libpq closes
/// its socket by itself when the connection breaks, and the number may be reused at once by
/// another thread's socket; deregistering or closing that number later would hit the wrong
/// socket. The duplicate keeps the open file description alive until we close it ourselves.
class PgConnection {
public:
    explicit PgConnection(asio::any_io_executor ex) : socket_(std::move(ex)) {}
    ~PgConnection() { reset(); }
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    /// Connected, idle, and not ended by the server while idle (restart, idle timeout): such a
    /// connection shows it only now, through a FATAL notice or end of file on its socket.
    bool usable()
    {
        if (!conn_ || PQstatus(conn_) != CONNECTION_OK)
            return false;
        if (PQconsumeInput(conn_) == 0)
            return false;
        (void)PQisBusy(conn_);  // parses what arrived, so a FATAL notice reaches on_notice
        return !fatal_ && PQstatus(conn_) == CONNECTION_OK &&
               PQtransactionStatus(conn_) == PQTRANS_IDLE;
    }

    core::awaitable<PgReply> connect(const std::string& dsn, Clock::time_point deadline)
    {
        reset();
        // Entries after the expanded DSN override it: the protocol below relies on UTF-8.
        static constexpr std::array<const char*, 4> keys{"dbname", "client_encoding",
                                                         "fallback_application_name", nullptr};
        const std::array<const char*, 4> values{dsn.c_str(), "UTF8", "metrics-server", nullptr};
        conn_ = PQconnectStartParams(keys.data(), values.data(), 1);
        if (!conn_)
            co_return PgReply{Failure::unreachable, nullptr, "out of memory"};
        PQsetNoticeReceiver(conn_, &PgConnection::on_notice, this);

        auto state = PQstatus(conn_) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
        while (state != PGRES_POLLING_OK) {
            if (state == PGRES_POLLING_FAILED)
                co_return lost(Failure::unreachable);
            // libpq may move to a new socket between steps (next address or host), and the new
            // one may get the old number: wait on a fresh duplicate each step.
            asio::posix::stream_descriptor step{socket_.get_executor()};
            if (!adopt(step))
                co_return lost(Failure::unreachable);
            auto ec = co_await wait(step,
                                    state == PGRES_POLLING_READING ? asio::posix::descriptor_base::wait_read
                                                                   : asio::posix::descriptor_base::wait_write,
                                    deadline);
            if (ec)
                co_return lost(Failure::unreachable,
                               ec == asio::error::timed_out ? "connection timed out" : ec.message());
            state = PQconnectPoll(conn_);
        }
        if (PQsetnonblocking(conn_, 1) != 0 || !adopt(socket_))
            co_return lost(Failure::unreachable);
        co_return PgReply{};
    }

    /// A simple-protocol query (several statements allowed, text results).
    core::awaitable<PgReply> query(const char* sql, Clock::time_point deadline)
    {
        if (PQsendQuery(conn_, sql) == 0)
            co_return lost(Failure::unreachable);
        co_return co_await finish(deadline);
    }

    /// A prepared statement with binary parameters and binary results.
    core::awaitable<PgReply> execute(const char* statement, const PgParams& params,
                                     Clock::time_point deadline)
    {
        if (PQsendQueryPrepared(conn_, statement, params.count, params.values.data(),
                                params.lengths.data(), params.formats.data(), 1) == 0)
            co_return lost(Failure::unreachable);
        co_return co_await finish(deadline);
    }

    void reset() noexcept
    {
        std::error_code ignored;
        if (socket_.is_open())
            socket_.close(ignored);  // our duplicate; libpq closes its own in PQfinish
        if (conn_)
            PQfinish(conn_);
        conn_ = nullptr;
        fatal_ = false;
        prepared = false;
    }

    /// Our statements are prepared on this session (cleared by reset()).
    bool prepared = false;

    // Batch parameter buffers, reused so that steady-state batches do not allocate for them.
    std::string gauge_names, gauge_values, counter_names, counter_deltas;

private:
    using WaitType = asio::posix::descriptor_base::wait_type;

    static core::awaitable<std::error_code> wait(asio::posix::stream_descriptor& socket, WaitType what,
                                                 Clock::time_point deadline)
    {
        const auto left = std::max(deadline - Clock::now(), Clock::duration::zero());
        auto [ec] = co_await core::with_timeout(socket.async_wait(what, core::use_nothrow_awaitable), left);
        co_return ec;
    }

    bool adopt(asio::posix::stream_descriptor& socket)
    {
        const int fd = ::fcntl(PQsocket(conn_), F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return false;
        std::error_code ec;
        socket.assign(fd, ec);
        if (ec)
            ::close(fd);
        return !ec;
    }

    core::awaitable<PgReply> finish(Clock::time_point deadline)
    {
        // The implicit transaction commits only at the Sync message, which goes last: a failure
        // before everything is sent leaves no effect.
        for (;;) {
            const int pending = PQflush(conn_);
            if (pending == 0)
                break;
            if (pending < 0)
                co_return lost(Failure::unreachable);
            auto ec = co_await wait(socket_, asio::posix::descriptor_base::wait_write, deadline);
            if (ec)
                co_return lost(Failure::unreachable, ec.message());
        }
        PgReply reply;
        auto ec = co_await collect(reply, deadline);
        if (ec == asio::error::timed_out) {
            // Dropping the connection would not stop the backend: it would run the statement to
            // its end (and commit it) once its locks come. Cancel it, and learn from its answer
            // whether it took effect.
            send_cancel(conn_);
            ec = co_await collect(reply, Clock::now() + cancel_grace);
            if (ec == asio::error::timed_out)
                co_return broken(std::move(reply), Failure::timeout, "timed out, and no answer to the cancel request");
        }
        if (ec == asio::error::eof)
            co_return broken(std::move(reply), Failure::ambiguous, {});
        if (ec)
            co_return broken(std::move(reply), Failure::ambiguous, ec.message());
        co_return classify(std::move(reply));
    }

    /// Reads results into `reply` until the last one ({}), the deadline (timed_out) or a broken
    /// connection (eof: libpq's message says why; other codes: the socket's).
    core::awaitable<std::error_code> collect(PgReply& reply, Clock::time_point deadline)
    {
        for (;;) {
            const bool alive = PQconsumeInput(conn_) != 0;
            while (!PQisBusy(conn_)) {
                PGresult* r = PQgetResult(conn_);
                if (!r)
                    co_return std::error_code{};
                keep(reply, r);
            }
            if (!alive)
                co_return asio::error::eof;
            auto ec = co_await wait(socket_, asio::posix::descriptor_base::wait_read, deadline);
            if (ec)
                co_return ec;
        }
    }

    // Keeps the first error, else the last result (a multi-statement query yields several).
    static void keep(PgReply& reply, PGresult* r)
    {
        if (reply.result && PQresultStatus(reply.result.get()) == PGRES_FATAL_ERROR)
            PQclear(r);
        else
            reply.result.reset(r);
    }

    PgReply classify(PgReply reply)
    {
        const PGresult* r = reply.result.get();
        const auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
            return reply;
        const char* sqlstate = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
        if (!sqlstate)  // produced by libpq itself: the connection is gone
            return broken(std::move(reply), Failure::ambiguous, {});
        const std::string_view state{sqlstate};
        reply.reason = fmt::format("[{}] {}", state, one_line(PQresultErrorMessage(r)));
        if (state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03") {
            reset();
            reply.failure = Failure::aborted;
        } else if (state == "40001" || state == "40P01") {  // serialization failure, deadlock
            reply.failure = Failure::aborted;
        } else if (state == "57014" || state == "55P03") {  // cancelled or statement_timeout; lock_timeout
            reply.failure = Failure::aborted;
        } else if (state == "26000") {  // our prepared statements are gone (DISCARD ALL by a pooler)
            reset();
            reply.failure = Failure::aborted;
        } else {
            reply.failure = Failure::statement;
        }
        if (reply.failure == Failure::aborted)
            reply.result.reset();
        return reply;
    }

    // The connection broke mid-statement; a server error that arrived first says more.
    PgReply broken(PgReply reply, Failure failure, std::string_view why)
    {
        const PGresult* r = reply.result.get();
        if (r && PQresultStatus(r) == PGRES_FATAL_ERROR && PQresultErrorField(r, PG_DIAG_SQLSTATE)) {
            PgReply classified = classify(std::move(reply));
            if (classified.failure != Failure::statement) {
                reset();
                return classified;
            }
        }
        return lost(failure, why);
    }

    PgReply lost(Failure failure, std::string_view why = {})
    {
        PgReply reply{failure, nullptr, why.empty() ? one_line(PQerrorMessage(conn_)) : std::string{why}};
        reset();
        return reply;
    }

    static void on_notice(void* self, const PGresult* r) noexcept
    {
        const char* severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
        const std::string_view level = severity ? severity : "";
        const std::string message = one_line(PQresultErrorMessage(r));
        if (level == "FATAL" || level == "PANIC") {
            static_cast<PgConnection*>(self)->fatal_ = true;
            core::log::warn("postgres: {}", message);
        } else if (level == "WARNING") {
            core::log::warn("postgres: {}", message);
        } else {
            core::log::debug("postgres: {}", message);
        }
    }

    PGconn* conn_ = nullptr;
    asio::posix::stream_descriptor socket_;
    bool fatal_ = false;
};

}  // namespace detail

namespace {

using detail::Failure;
using detail::PgConnection;
using detail::PgParams;
using detail::PgReply;

// Schema versions: entry i is version i + 1. Append, never edit. Each runs inside the PL/pgSQL
// block of migration_script().
constexpr std::array<std::string_view, 2> migrations{
    "CREATE TABLE IF NOT EXISTS gauges (name text PRIMARY KEY, value double precision NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS counters (name text PRIMARY KEY, delta bigint NOT NULL);",

    // Update times, and adoption in place of the Go server's tables, which version 1 found
    // already there: gauges(name, value, updated_at) and counters(name, value, updated_at),
    // the counter's total in `value`, columns of other types (varchar, timestamp), possibly a
    // unique index rather than a primary key. Every row is kept: a column is converted, never
    // dropped, and a row that cannot be (a NULL value) stops the migration, which rolls back.
    // `timestamp` without time zone is read in the session's time zone, as the server's now()
    // wrote it. ON CONFLICT (name) needs a unique index on name alone.
    R"sql(DECLARE
  tab text; col text; want text; have text;
BEGIN
  IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'counters'::regclass AND attname = 'value'
             AND attnum > 0 AND NOT attisdropped)
     AND NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'counters'::regclass
                     AND attname = 'delta' AND attnum > 0 AND NOT attisdropped) THEN
    ALTER TABLE counters RENAME COLUMN value TO delta;
  END IF;
  FOR tab, col, want IN VALUES ('gauges', 'name', 'text'), ('gauges', 'value', 'double precision'),
                               ('counters', 'name', 'text'), ('counters', 'delta', 'bigint') LOOP
    SELECT format_type(atttypid, atttypmod) INTO have FROM pg_attribute
      WHERE attrelid = tab::regclass AND attname = col AND attnum > 0 AND NOT attisdropped;
    IF have IS NULL THEN
      RAISE EXCEPTION 'table % has no column %: not a metrics table', tab, col;
    END IF;
    IF have <> want THEN
      EXECUTE format('ALTER TABLE %I ALTER COLUMN %I TYPE %s USING %I::%s', tab, col, want, col, want);
    END IF;
    EXECUTE format('ALTER TABLE %I ALTER COLUMN %I SET NOT NULL', tab, col);
  END LOOP;
  FOREACH tab IN ARRAY ARRAY['gauges', 'counters'] LOOP
    have := NULL;
    SELECT format_type(atttypid, atttypmod) INTO have FROM pg_attribute
      WHERE attrelid = tab::regclass AND attname = 'updated_at' AND attnum > 0 AND NOT attisdropped;
    IF have IS NULL THEN
      EXECUTE format('ALTER TABLE %I ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()', tab);
    ELSE
      IF have <> 'timestamp with time zone' THEN
        EXECUTE format('ALTER TABLE %I ALTER COLUMN updated_at TYPE timestamptz'
                       ' USING updated_at::timestamptz', tab);
      END IF;
      EXECUTE format('UPDATE %I SET updated_at = now() WHERE updated_at IS NULL', tab);
      EXECUTE format('ALTER TABLE %I ALTER COLUMN updated_at SET DEFAULT now(),'
                     ' ALTER COLUMN updated_at SET NOT NULL', tab);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_index i
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = tab::regclass AND i.indisunique AND i.indnkeyatts = 1
                     AND a.attname = 'name' AND i.indpred IS NULL AND i.indexprs IS NULL) THEN
      EXECUTE format('ALTER TABLE %I ADD UNIQUE (name)', tab);
    END IF;
  END LOOP;
END;)sql",
};

// One round trip, one transaction; the advisory lock makes daemons that start together take
// turns (the version table itself is created under it). A `schema_migrations` table without
// our `applied_at` column belongs to another tool (golang-migrate, which the Go server may have
// used, keeps `version, dirty` there): it is kept, renamed, so that its versions are not
// mistaken for ours.
const std::string& migration_script()
{
    static const std::string script = [] {
        std::string s =
            "BEGIN;\n"
            "SELECT pg_advisory_xact_lock(7036329541851066113);\n"
            "DO $adopt$ BEGIN\n"
            "IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('schema_migrations')"
            " AND attname = 'applied_at' AND NOT attisdropped)"
            " AND to_regclass('schema_migrations') IS NOT NULL THEN\n"
            "ALTER TABLE schema_migrations RENAME TO go_schema_migrations;\n"
            "END IF;\n"
            "END $adopt$;\n"
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now());\n"
            "DO $migrate$ BEGIN\n";
        for (std::size_t i = 0; i < migrations.size(); ++i)
            fmt::format_to(std::back_inserter(s),
                           "IF NOT EXISTS (SELECT FROM schema_migrations WHERE version = {0}) THEN\n"
                           "{1}\nINSERT INTO schema_migrations (version) VALUES ({0});\nEND IF;\n",
                           i + 1, migrations[i]);
        s += "END $migrate$;\nCOMMIT;";
        return s;
    }();
    return script;
}

constexpr const char* gauge_set = "metrics_gauge_set";
constexpr const char* counter_add = "metrics_counter_add";
constexpr const char* gauge_refresh = "metrics_gauge_refresh";
constexpr const char* counter_refresh = "metrics_counter_refresh";
constexpr const char* gauge_get = "metrics_gauge_get";
constexpr const char* counter_get = "metrics_counter_get";
constexpr const char* gauge_remove = "metrics_gauge_remove";
constexpr const char* counter_remove = "metrics_counter_remove";
constexpr const char* list_all = "metrics_list";
constexpr const char* batch_apply = "metrics_batch";
constexpr const char* gauge_sweep = "metrics_gauge_sweep";
constexpr const char* counter_sweep = "metrics_counter_sweep";

// Prepared once per connection, in one round trip. `{g}` and `{c}` stand for "this row of
// gauges (alias g) / counters (alias c) has expired", `false` without a TTL, so that the
// planner drops every expiry test.
//
// An update over an expired row starts from scratch in the same statement (a counter takes the
// delta as its total). With a TTL, the `old` CTE ({old_g}, {old_c}) counts such rows for
// expired(), reading the snapshot the statement started from (no effect on the data). Without
// one it is left out and {old_n} is 0: even with its test folded to `false`, its InitPlan makes
// every single update measurably slower.
//
// The batch is one statement, hence one implicit transaction: an error anywhere (an overflow)
// undoes all of it. ON CONFLICT cannot touch a row twice, so duplicates are merged first: the
// last gauge per name (by position), the sum of counter deltas per name (a sum outside bigint is
// an overflow). Rows are written in name order so that concurrent batches lock in the same
// order. The result is one row per counter element in input order: the total right after that
// element, i.e. the previous total (final - sum) plus the running sum; the cast rejects a
// step that leaves bigint even when the final total fits, as applying in order would. A last
// row (ordinal NULL) carries the number of expired rows the batch restarted.
//
// The cap: an update inserts only when this daemon could claim room for a row; without room it
// runs the *_refresh statement instead, which updates an existing row or changes nothing (no row
// back: refused). (xmax = 0) tells an inserted row from an updated one. A batch gets the room it
// could claim as $5 and inserts nothing, and updates nothing, when its distinct new names need
// more (last row's third column -1); else that column counts the rows it inserted.
//
// The sweep deletes by ctid (a TID scan) at most $1 expired rows, skipping rows another
// session holds (another daemon's sweep or an update in flight); the outer test re-checks a
// row an update refreshed meanwhile. There is deliberately no index on updated_at: it would
// make every update a non-HOT update, so each sweep statement scans until it has its chunk.
//
// DEALLOCATE ALL first: PREPARE is not transactional, so a run cancelled halfway (a table lock)
// leaves some statements behind, and the script runs again on the same session.
constexpr const char* prepare_template = R"sql(
DEALLOCATE ALL;
PREPARE metrics_gauge_set (text, float8) AS
  {old_g}
  INSERT INTO gauges AS g (name, value, updated_at) VALUES ($1, $2, now())
  ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
  RETURNING {old_n}, (xmax = 0);
PREPARE metrics_counter_add (text, int8) AS
  {old_c}
  INSERT INTO counters AS c (name, delta, updated_at) VALUES ($1, $2, now())
  ON CONFLICT (name) DO UPDATE
    SET delta = CASE WHEN {c} THEN excluded.delta ELSE c.delta + excluded.delta END,
        updated_at = excluded.updated_at
  RETURNING delta, {old_n}, (xmax = 0);
PREPARE metrics_gauge_refresh (text, float8) AS
  {old_g}
  UPDATE gauges g SET value = $2, updated_at = now() WHERE name = $1
  RETURNING {old_n};
PREPARE metrics_counter_refresh (text, int8) AS
  {old_c}
  UPDATE counters c SET delta = CASE WHEN {c} THEN $2 ELSE c.delta + $2 END, updated_at = now() WHERE name = $1
  RETURNING delta, {old_n};
PREPARE metrics_gauge_get (text) AS SELECT value FROM gauges g WHERE name = $1 AND NOT {g};
PREPARE metrics_counter_get (text) AS SELECT delta FROM counters c WHERE name = $1 AND NOT {c};
PREPARE metrics_gauge_remove (text) AS DELETE FROM gauges g WHERE name = $1 RETURNING value, {g};
PREPARE metrics_counter_remove (text) AS DELETE FROM counters c WHERE name = $1 RETURNING delta, {c};
PREPARE metrics_list AS
  SELECT name, false, value, 0::int8, {ms} FROM gauges g WHERE NOT {g}
  UNION ALL SELECT name, true, 0::float8, delta, {ms} FROM counters c WHERE NOT {c};
PREPARE metrics_batch (text[], float8[], text[], int8[], int8) AS
  WITH ge AS (
    SELECT DISTINCT ON (name) name, value
    FROM unnest($1, $2) WITH ORDINALITY AS t(name, value, ord)
    ORDER BY name, ord DESC
  ), gx AS (
    SELECT count(*) AS n FROM gauges g JOIN ge USING (name) WHERE {g}
  ), ce AS (
    SELECT name, delta, ord FROM unnest($3, $4) WITH ORDINALITY AS t(name, delta, ord)
  ), ct AS (
    SELECT name, sum(delta)::int8 AS total FROM ce GROUP BY name
  ), cx AS (
    SELECT count(*) AS n FROM counters c JOIN ct USING (name) WHERE {c}
  ), fits AS (
    SELECT (SELECT count(*) FROM ge WHERE NOT EXISTS (SELECT FROM gauges g WHERE g.name = ge.name))
         + (SELECT count(*) FROM ct WHERE NOT EXISTS (SELECT FROM counters c WHERE c.name = ct.name)) <= $5 AS ok
  ), gu AS (
    INSERT INTO gauges AS g (name, value, updated_at)
    SELECT name, value, now() FROM ge WHERE (SELECT ok FROM fits) ORDER BY name
    ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
    RETURNING (xmax = 0) AS inserted
  ), cu AS (
    INSERT INTO counters AS c (name, delta, updated_at)
    SELECT name, total, now() FROM ct WHERE (SELECT ok FROM fits) ORDER BY name
    ON CONFLICT (name) DO UPDATE
      SET delta = CASE WHEN {c} THEN excluded.delta ELSE c.delta + excluded.delta END,
          updated_at = excluded.updated_at
    RETURNING name, delta, (xmax = 0) AS inserted
  )
  SELECT ce.ord, ((cu.delta - ct.total) + sum(ce.delta) OVER (PARTITION BY ce.name ORDER BY ce.ord))::int8, 0::int8
  FROM ce JOIN ct USING (name) JOIN cu USING (name)
  UNION ALL SELECT NULL, (SELECT n FROM gx) + (SELECT n FROM cx),
    CASE WHEN (SELECT ok FROM fits)
      THEN (SELECT count(*) FROM gu WHERE inserted) + (SELECT count(*) FROM cu WHERE inserted) ELSE -1 END
  ORDER BY 1 NULLS LAST;
PREPARE metrics_gauge_sweep (int8) AS
  WITH gone AS (
    DELETE FROM gauges g WHERE {g} AND ctid = ANY (ARRAY(
      SELECT ctid FROM gauges g WHERE {g} LIMIT $1 FOR UPDATE SKIP LOCKED))
    RETURNING 1)
  SELECT count(*) FROM gone;
PREPARE metrics_counter_sweep (int8) AS
  WITH gone AS (
    DELETE FROM counters c WHERE {c} AND ctid = ANY (ARRAY(
      SELECT ctid FROM counters c WHERE {c} LIMIT $1 FOR UPDATE SKIP LOCKED))
    RETURNING 1)
  SELECT count(*) FROM gone;
)sql";

// The statements for `ttl` (0: nothing expires).
std::string prepare_script(std::chrono::milliseconds ttl)
{
    const auto expired = [&](std::string_view alias) {
        if (ttl.count() <= 0)
            return std::string{"false"};
        return fmt::format("({}.updated_at < now() - interval '{} milliseconds')", alias, ttl.count());
    };
    const auto old = [&](std::string_view table, std::string_view alias) {
        if (ttl.count() <= 0)
            return std::string{};
        return fmt::format("WITH old AS (SELECT count(*) AS n FROM {} {} WHERE {}.name = $1 AND {})", table, alias,
                           alias, expired(alias));
    };
    return fmt::format(fmt::runtime(prepare_template), fmt::arg("g", expired("g")), fmt::arg("c", expired("c")),
                       fmt::arg("old_g", old("gauges", "g")), fmt::arg("old_c", old("counters", "c")),
                       fmt::arg("old_n", ttl.count() <= 0 ? "0::int8" : "(SELECT n FROM old)"),
                       fmt::arg("ms", "floor(extract(epoch FROM updated_at) * 1000)::int8"));
}

// Setup is idempotent and transactional: whatever broke it, it can run again.
PgReply setup_failure(PgReply reply)
{
    if (reply.failure == Failure::ambiguous || reply.failure == Failure::timeout)
        reply.failure = Failure::unreachable;
    return reply;
}

bool shape_ok(const PGresult* r, int row, int column, int length)
{
    const bool ok = row < PQntuples(r) && column < PQnfields(r) && PQfformat(r, column) == 1 &&
                    !PQgetisnull(r, row, column) && PQgetlength(r, row, column) == length;
    if (!ok)
        core::log::error("postgres: unexpected result shape (row {}, column {})", row, column);
    return ok;
}

Result<std::int64_t> int8_at(const PGresult* r, int row, int column)
{
    if (!shape_ok(r, row, column, 8))
        return Errc::storage_unavailable;
    return std::bit_cast<std::int64_t>(detail::get_be64(PQgetvalue(r, row, column)));
}

Result<bool> bool_at(const PGresult* r, int row, int column)
{
    if (!shape_ok(r, row, column, 1))
        return Errc::storage_unavailable;
    return PQgetvalue(r, row, column)[0] != 0;
}

Result<double> float8_at(const PGresult* r, int row, int column)
{
    if (!shape_ok(r, row, column, 8))
        return Errc::storage_unavailable;
    return std::bit_cast<double>(detail::get_be64(PQgetvalue(r, row, column)));
}

std::string_view bytes_of(const std::array<char, 8>& a) { return {a.data(), a.size()}; }

// The metric in the first column of the first row: a gauge's value or a counter's total.
Result<Metric> metric_at(const PGresult* r, Kind kind, std::string_view id)
{
    if (kind == Kind::gauge) {
        Result<double> value = float8_at(r, 0, 0);
        if (!value)
            return value.error();
        return Metric::gauge(id, *value);
    }
    Result<std::int64_t> total = int8_at(r, 0, 0);
    if (!total)
        return total.error();
    return Metric::counter(id, *total);
}

// Completion of the sweep loop: an exception ends it and is logged once.
void log_sweep_end(std::exception_ptr e) noexcept
{
    if (!e)
        return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        core::log::error("postgres: the expiry sweep stopped: {}", x.what());
    } catch (...) {
        core::log::error("postgres: the expiry sweep stopped");
    }
}

// A slot of `pool` before `deadline`, else timed_out (operation_aborted once shut down). Not
// core::with_timeout: a slot granted just as the deadline passes must be kept (and released),
// so both outcomes of the race are looked at.
core::awaitable<std::tuple<std::error_code, std::size_t>> acquire_before(detail::SlotPool& pool,
                                                                        Clock::time_point deadline)
{
    asio::steady_timer timer{co_await asio::this_coro::executor, deadline};
    auto [order, ec, slot, timer_ec] =
        co_await asio::experimental::make_parallel_group(pool.async_acquire(core::asio_tokens::deferred),
                                                         timer.async_wait(core::asio_tokens::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    (void)timer_ec;
    if (!ec)
        co_return std::tuple{ec, slot};
    co_return std::tuple{order[0] == 1 ? std::error_code{asio::error::timed_out} : ec, std::size_t{0}};
}

// Session settings of every connection: the server ends a statement by itself at the
// deadline of the call that waits for it (PostgreSQL takes milliseconds without a unit).
std::string session_settings(std::chrono::milliseconds query_timeout)
{
    const auto ms = std::clamp<std::int64_t>(query_timeout.count(), 1, INT_MAX);
    return fmt::format("SET statement_timeout = {0}; SET lock_timeout = {0}", ms);
}

}  // namespace

std::vector<std::chrono::milliseconds> PostgresOptions::default_retry_delays()
{
    using std::chrono::seconds;
    return {seconds{1}, seconds{3}, seconds{5}};
}

/// A pool slot held for the duration of one call; given back on destruction.
class PostgresStorage::Lease {
public:
    /// `in_use`, when given, counts the leases alive (the self-metrics' pool in use).
    Lease(detail::SlotPool& pool, std::size_t slot, std::atomic<std::int64_t>* in_use = nullptr)
        : pool_(&pool), slot_(slot), in_use_(in_use)
    {
        if (in_use_ != nullptr)
            in_use_->fetch_add(1, std::memory_order_relaxed);
    }
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), slot_(other.slot_), in_use_(std::exchange(other.in_use_, nullptr))
    {
    }
    Lease& operator=(Lease&&) = delete;
    ~Lease()
    {
        if (pool_)
            pool_->release(slot_);
        if (in_use_ != nullptr)
            in_use_->fetch_sub(1, std::memory_order_relaxed);
    }
    std::size_t slot() const noexcept { return slot_; }

private:
    detail::SlotPool* pool_;
    std::size_t slot_;
    std::atomic<std::int64_t>* in_use_;
};

PostgresStorage::PostgresStorage(asio::any_io_executor ex, std::string dsn, PostgresOptions opts)
    : ex_(std::move(ex)),
      dsn_(std::move(dsn)),
      opts_(std::move(opts)),
      pool_(ex_, std::max<std::size_t>(opts_.pool_size, 1)),
      ping_pool_(ex_, 1),
      session_settings_(session_settings(opts_.query_timeout)),
      prepare_script_(prepare_script(opts_.metric_ttl)),
      sweep_strand_(asio::make_strand(ex_)),
      sweep_timer_(sweep_strand_),
      sweep_running_(ex_, 1)
{
    opts_.pool_size = std::max<std::size_t>(opts_.pool_size, 1);
    for (std::size_t i = 0; i < opts_.pool_size; ++i)
        connections_.push_back(std::make_unique<PgConnection>(ex_));
    ping_connection_ = std::make_unique<PgConnection>(ex_);
}

PostgresStorage::~PostgresStorage() = default;

core::awaitable<Result<std::unique_ptr<PostgresStorage>>> PostgresStorage::open(asio::any_io_executor ex,
                                                                                std::string dsn,
                                                                                PostgresOptions opts)
{
    char* error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &error);
    if (!parsed) {
        core::log::error("postgres: unusable DSN: {}", error ? detail::one_line(error) : "out of memory");
        PQfreemem(error);
        co_return Errc::storage_unavailable;
    }
    PQconninfoFree(parsed);

    std::unique_ptr<PostgresStorage> store{new PostgresStorage(std::move(ex), std::move(dsn), std::move(opts))};
    {
        const auto deadline = Clock::now() + store->opts_.connect_timeout;
        Result<Lease> lease = co_await store->acquire(deadline);
        assert(lease);  // a fresh pool has free slots
        PgReply reply = co_await store->setup(*store->connections_[lease->slot()], deadline, deadline);
        if (reply.failure == Failure::none)
            core::log::info("postgres: connected, schema at version {}", migrations.size());
        else
            core::log::warn("postgres: database unavailable at start, continuing without it "
                            "(requests fail and /ping answers 500 until it is back): {}",
                            reply.reason);
    }
    if (store->opts_.metric_ttl.count() > 0) {
        std::size_t slot = 0;
        const bool free = store->sweep_running_.try_acquire(slot);
        assert(free);  // one loop per storage
        (void)free;
        asio::co_spawn(store->sweep_strand_, store->sweep_timer_loop(slot), &log_sweep_end);
    }
    co_return std::move(store);
}

core::awaitable<Result<PostgresStorage::Lease>> PostgresStorage::acquire(Deadline deadline)
{
    if (closed_)
        co_return Errc::storage_unavailable;
    std::size_t slot = 0;
    if (!pool_.try_acquire(slot)) {
        if (waiting_.fetch_add(1) >= opts_.max_waiting) {
            waiting_.fetch_sub(1);
            core::log::debug("postgres: {} calls already wait for a connection", opts_.max_waiting);
            co_return Errc::storage_busy;
        }
        auto [ec, granted] = co_await acquire_before(pool_, deadline);
        waiting_.fetch_sub(1);
        if (ec == asio::error::timed_out) {
            core::log::debug("postgres: no connection free within the request deadline");
            co_return Errc::storage_busy;
        }
        if (ec)
            co_return Errc::storage_unavailable;
        slot = granted;
    }
    Lease lease{pool_, slot, &stats_.in_use};
    if (closed_)  // queued before close(): give the slot to close() instead
        co_return Errc::storage_unavailable;
    co_return Result<Lease>{std::move(lease)};
}

core::awaitable<PgReply> PostgresStorage::setup(PgConnection& conn, Deadline connect_deadline,
                                                Deadline query_deadline, bool prepare)
{
    PgReply reply;
    if (!conn.usable()) {
        reply = co_await conn.connect(dsn_, connect_deadline);
        if (reply.failure != Failure::none)
            co_return reply;
        // First, so that the server bounds the rest of the setup too (PREPARE waits for table locks).
        reply = co_await conn.query(session_settings_.c_str(), query_deadline);
        if (reply.failure != Failure::none) {
            conn.reset();
            co_return setup_failure(std::move(reply));
        }
    }
    if (!prepare || conn.prepared)
        co_return PgReply{};
    if (!schema_ready_) {
        reply = co_await conn.query(migration_script().c_str(), query_deadline);
        if (reply.failure != Failure::none) {
            conn.reset();  // possibly inside the failed transaction
            co_return setup_failure(std::move(reply));
        }
        schema_ready_ = true;
    }
    reply = co_await conn.query(prepare_script_.c_str(), query_deadline);
    if (reply.failure != Failure::none) {
        // A cancelled PREPARE leaves a healthy session: keep it rather than open another backend
        // while the old one may still be exiting.
        if (reply.failure != Failure::aborted || !conn.usable())
            conn.reset();
        co_return setup_failure(std::move(reply));
    }
    if (!counted_.load(std::memory_order_relaxed)) {
        reply = co_await conn.query("SELECT (SELECT count(*) FROM gauges) + (SELECT count(*) FROM counters)",
                                    query_deadline);
        if (reply.failure != Failure::none) {
            if (reply.failure != Failure::aborted || !conn.usable())
                conn.reset();
            co_return setup_failure(std::move(reply));
        }
        std::size_t rows = 0;
        const PGresult* r = reply.result.get();
        const char* text = PQntuples(r) == 1 && PQnfields(r) == 1 ? PQgetvalue(r, 0, 0) : "";
        if (std::from_chars(text, text + std::strlen(text), rows).ec != std::errc{}) {
            reply.failure = Failure::statement;
            reply.reason = "unexpected answer to the row count";
            co_return reply;
        }
        // Once, by whichever connection gets there first; claims made meanwhile stay counted.
        if (!counted_.exchange(true)) {
            stored_.fetch_add(rows, std::memory_order_relaxed);
            core::log::info("postgres: {} metrics stored (cap {})", rows, opts_.max_metrics);
        }
    }
    conn.prepared = true;
    co_return PgReply{};
}

std::size_t PostgresStorage::claim(std::size_t n) noexcept
{
    if (opts_.max_metrics == 0) {
        stored_.fetch_add(n, std::memory_order_relaxed);
        return n;
    }
    std::size_t now = stored_.load(std::memory_order_relaxed);
    std::size_t take = 0;
    do {
        take = std::min(n, now < opts_.max_metrics ? opts_.max_metrics - now : 0);
        if (take == 0)
            return 0;
    } while (!stored_.compare_exchange_weak(now, now + take, std::memory_order_relaxed));
    return take;
}

void PostgresStorage::forget(std::size_t n) noexcept
{
    std::size_t now = stored_.load(std::memory_order_relaxed);
    while (n != 0 && !stored_.compare_exchange_weak(now, now - std::min(now, n), std::memory_order_relaxed)) {
    }
}

core::awaitable<PgReply> PostgresStorage::attempt(PgConnection& conn, const char* statement,
                                                  const PgParams& params, Deadline deadline)
{
    if (!conn.prepared || !conn.usable()) {
        const auto connect_deadline = std::min(Clock::now() + opts_.connect_timeout, deadline);
        PgReply reply = co_await setup(conn, connect_deadline, connect_deadline);
        if (reply.failure != Failure::none)
            co_return reply;
    }
    co_return co_await conn.execute(statement, params, std::min(Clock::now() + opts_.query_timeout, deadline));
}

core::awaitable<Result<PgReply>> PostgresStorage::execute(PgConnection& conn, const char* statement,
                                                          const PgParams& params, bool idempotent,
                                                          Deadline deadline)
{
    for (std::size_t attempt_no = 0;; ++attempt_no) {
        const auto started = Clock::now();
        PgReply reply = co_await attempt(conn, statement, params, deadline);
        stats_.statement(Clock::now() - started, reply.failure == Failure::none);
        if (reply.failure == Failure::none)
            co_return std::move(reply);
        if (reply.failure == Failure::statement) {
            const char* sqlstate = PQresultErrorField(reply.result.get(), PG_DIAG_SQLSTATE);
            const std::string_view state = sqlstate ? sqlstate : "";
            if (state == "22003") {  // numeric_value_out_of_range: only bigint sums can overflow
                core::log::debug("postgres: {}: {}", statement, reply.reason);
                co_return Errc::counter_overflow;
            }
            if (state == "22021" || state == "22P05") {  // a name that is not valid UTF-8
                core::log::info("postgres: {}: {}", statement, reply.reason);
                co_return Errc::bad_name;
            }
            core::log::error("postgres: {} failed: {}", statement, reply.reason);
            co_return Errc::storage_unavailable;
        }
        const bool uncertain = reply.failure == Failure::ambiguous || reply.failure == Failure::timeout;
        if (uncertain && !idempotent) {
            core::log::error("postgres: {} failed, outcome unknown so not retried: {}", statement,
                             reply.reason);
            co_return Errc::outcome_unknown;
        }
        if (attempt_no >= opts_.retry_delays.size() || closed_) {
            core::log::error("postgres: {} failed: {}", statement, reply.reason);
            co_return Errc::storage_unavailable;
        }
        const auto delay = opts_.retry_delays[attempt_no];
        if (Clock::now() + delay >= deadline) {
            core::log::warn("postgres: {} failed, no time left to retry: {}", statement, reply.reason);
            co_return Errc::storage_busy;
        }
        core::log::warn("postgres: {} failed, retrying in {} ms: {}", statement, delay.count(), reply.reason);
        asio::steady_timer timer{co_await asio::this_coro::executor, delay};
        co_await timer.async_wait(core::use_nothrow_awaitable);
    }
}

core::awaitable<Result<Metric>> PostgresStorage::run(Request request)
{
    switch (request.op) {
    case Op::update:
        co_return co_await update(request.metric);
    case Op::get:
        co_return co_await read(request.metric.kind, request.metric.id);
    case Op::remove:
        co_return co_await remove(request.metric.kind, request.metric.id);
    case Op::update_batch: {
        std::vector<Metric> unused;
        const Result<void> done = co_await update_batch(request.batch, request.stored ? *request.stored : unused);
        if (!done)
            co_return done.error();
        co_return Metric{};
    }
    }
    co_return Errc::storage_unavailable;
}

core::awaitable<Result<Metric>> PostgresStorage::update(Metric update)
{
    const Deadline deadline = Clock::now() + opts_.request_timeout;
    Result<Lease> lease = co_await acquire(deadline);
    if (!lease)
        co_return lease.error();
    PgConnection& conn = *connections_[lease->slot()];
    std::array<char, 8> number;
    PgParams params;
    params.add(update.id);
    const bool gauge = update.kind == Kind::gauge;
    detail::put_be64(number.data(), gauge ? std::bit_cast<std::uint64_t>(update.value)
                                          : std::bit_cast<std::uint64_t>(update.delta));
    params.add(bytes_of(number));
    // No room: only an existing row may be updated.
    const std::size_t claimed = claim(1);
    const char* statement =
        claimed != 0 ? (gauge ? gauge_set : counter_add) : (gauge ? gauge_refresh : counter_refresh);
    Result<PgReply> reply = co_await execute(conn, statement, params, false, deadline);
    if (!reply) {
        forget(claimed);
        co_return reply.error();
    }
    const PGresult* r = reply->result.get();
    if (claimed == 0 && PQntuples(r) == 0) {
        refusals_.note(opts_.max_metrics);
        co_return Errc::too_many_metrics;
    }
    if (claimed != 0) {
        Result<bool> inserted = bool_at(r, 0, gauge ? 1 : 2);
        if (!inserted || !*inserted)
            forget(claimed);
        if (!inserted)
            co_return inserted.error();
    }
    Result<std::int64_t> restarted = int8_at(r, 0, gauge ? 0 : 1);
    if (!restarted)
        co_return restarted.error();
    if (*restarted != 0)
        expired_.fetch_add(1, std::memory_order_relaxed);
    if (gauge)
        co_return update;
    Result<std::int64_t> total = int8_at(r, 0, 0);
    if (!total)
        co_return total.error();
    co_return Metric::counter(update.id, *total);
}

core::awaitable<Result<void>> PostgresStorage::update_batch(std::span<const Metric> batch,
                                                            std::vector<Metric>& stored)
{
    stored.clear();
    if (batch.empty())
        co_return Result<void>{};
    const Deadline deadline = Clock::now() + opts_.request_timeout;
    Result<Lease> lease = co_await acquire(deadline);
    if (!lease)
        co_return lease.error();
    PgConnection& conn = *connections_[lease->slot()];

    const auto gauges = static_cast<std::size_t>(
        std::count_if(batch.begin(), batch.end(), [](const Metric& m) { return m.kind == Kind::gauge; }));
    const std::size_t counters = batch.size() - gauges;
    detail::begin_array(conn.gauge_names, detail::text_oid, gauges);
    detail::begin_array(conn.gauge_values, detail::float8_oid, gauges);
    detail::begin_array(conn.counter_names, detail::text_oid, counters);
    detail::begin_array(conn.counter_deltas, detail::int8_oid, counters);
    for (const Metric& m : batch) {
        if (m.kind == Kind::gauge) {
            detail::put_element(conn.gauge_names, m.id);
            detail::put_element(conn.gauge_values, std::bit_cast<std::uint64_t>(m.value));
        } else {
            detail::put_element(conn.counter_names, m.id);
            detail::put_element(conn.counter_deltas, std::bit_cast<std::uint64_t>(m.delta));
        }
    }
    PgParams params;
    for (const std::string* buffer : {&conn.gauge_names, &conn.gauge_values, &conn.counter_names, &conn.counter_deltas}) {
        if (buffer->size() > INT_MAX)  // libpq's length type
            co_return Errc::batch_too_large;
        params.add(*buffer);
    }
    // Room for as many new names as the batch has elements, or what is left; the statement
    // refuses the batch when its distinct new names need more.
    const std::size_t claimed = claim(batch.size());
    std::array<char, 8> room;
    detail::put_be64(room.data(), claimed);
    params.add(bytes_of(room));

    Result<PgReply> reply = co_await execute(conn, batch_apply, params, false, deadline);
    if (!reply) {
        forget(claimed);
        co_return reply.error();
    }
    const PGresult* totals = reply->result.get();
    const int last = PQntuples(totals) - 1;
    Result<std::int64_t> inserted =
        last >= 0 ? int8_at(totals, last, 2) : Result<std::int64_t>{Errc::storage_unavailable};
    if (!inserted || *inserted < 0 || static_cast<std::size_t>(*inserted) > claimed) {
        forget(claimed);
        if (inserted && *inserted == -1) {
            refusals_.note(opts_.max_metrics);
            co_return Errc::too_many_metrics;
        }
        co_return Errc::storage_unavailable;
    }
    forget(claimed - static_cast<std::size_t>(*inserted));
    if (static_cast<std::size_t>(PQntuples(totals)) != counters + 1) {
        core::log::error("postgres: batch returned {} rows for {} counters", PQntuples(totals), counters);
        co_return Errc::storage_unavailable;
    }
    // Only bookkeeping: the batch is committed whatever this row holds.
    Result<std::int64_t> restarted = int8_at(totals, static_cast<int>(counters), 1);
    if (restarted && *restarted > 0)
        expired_.fetch_add(static_cast<std::uint64_t>(*restarted), std::memory_order_relaxed);
    stored.reserve(batch.size());
    int row = 0;
    for (const Metric& m : batch) {
        if (m.kind == Kind::gauge) {
            stored.push_back(m);
            continue;
        }
        Result<std::int64_t> total = int8_at(totals, row++, 1);
        if (!total) {
            stored.clear();
            co_return total.error();
        }
        stored.push_back(Metric::counter(m.id, *total));
    }
    co_return Result<void>{};
}

core::awaitable<Result<Metric>> PostgresStorage::read(Kind kind, std::string_view id)
{
    const Deadline deadline = Clock::now() + opts_.request_timeout;
    Result<Lease> lease = co_await acquire(deadline);
    if (!lease)
        co_return lease.error();
    PgParams params;
    params.add(id);
    Result<PgReply> reply = co_await execute(*connections_[lease->slot()],
                                             kind == Kind::gauge ? gauge_get : counter_get, params, true, deadline);
    if (!reply)
        co_return reply.error();
    const PGresult* r = reply->result.get();
    if (PQntuples(r) == 0)
        co_return Errc::not_found;
    co_return metric_at(r, kind, id);
}

core::awaitable<Result<Metric>> PostgresStorage::remove(Kind kind, std::string_view id)
{
    const Deadline deadline = Clock::now() + opts_.request_timeout;
    Result<Lease> lease = co_await acquire(deadline);
    if (!lease)
        co_return lease.error();
    PgParams params;
    params.add(id);
    Result<PgReply> reply = co_await execute(*connections_[lease->slot()],
                                             kind == Kind::gauge ? gauge_remove : counter_remove, params, false,
                                             deadline);
    if (!reply)
        co_return reply.error();
    const PGresult* r = reply->result.get();
    if (PQntuples(r) == 0)
        co_return Errc::not_found;
    forget(1);
    if (!shape_ok(r, 0, 1, 1))
        co_return Errc::storage_unavailable;
    if (PQgetvalue(r, 0, 1)[0] != 0) {  // expired already: deleted, but there was nothing to remove
        expired_.fetch_add(1, std::memory_order_relaxed);
        co_return Errc::not_found;
    }
    removed_.fetch_add(1, std::memory_order_relaxed);
    co_return metric_at(r, kind, id);
}

core::awaitable<Result<std::vector<OwnedMetric>>> PostgresStorage::list()
{
    const Deadline deadline = Clock::now() + opts_.request_timeout;
    Result<Lease> lease = co_await acquire(deadline);
    if (!lease)
        co_return lease.error();
    Result<PgReply> reply = co_await execute(*connections_[lease->slot()], list_all, PgParams{}, true, deadline);
    if (!reply)
        co_return reply.error();
    const PGresult* r = reply->result.get();
    const int rows = PQntuples(r);
    std::vector<OwnedMetric> all;
    all.reserve(static_cast<std::size_t>(rows));
    for (int i = 0; i < rows; ++i) {
        if (!shape_ok(r, i, 1, 1))
            co_return Errc::storage_unavailable;
        const bool counter = PQgetvalue(r, i, 1)[0] != 0;
        Result<double> value = float8_at(r, i, 2);
        Result<std::int64_t> delta = int8_at(r, i, 3);
        Result<std::int64_t> updated_at = int8_at(r, i, 4);
        if (!value || !delta || !updated_at || PQgetisnull(r, i, 0))
            co_return Errc::storage_unavailable;
        OwnedMetric m{std::string{PQgetvalue(r, i, 0), static_cast<std::size_t>(PQgetlength(r, i, 0))},
                      counter ? Kind::counter : Kind::gauge, counter ? 0.0 : *value, counter ? *delta : 0};
        m.updated_at = *updated_at;
        all.push_back(std::move(m));
    }
    // Byte order, as the other storages, whatever the database collation says.
    std::sort(all.begin(), all.end(), [](const OwnedMetric& a, const OwnedMetric& b) {
        return std::tie(a.id, a.kind) < std::tie(b.id, b.kind);
    });
    co_return all;
}

core::awaitable<Result<std::uint64_t>> PostgresStorage::sweep_chunk(const char* statement)
{
    const Deadline deadline = Clock::now() + opts_.request_timeout;
    Result<Lease> lease = co_await acquire(deadline);
    if (!lease)
        co_return lease.error();
    std::array<char, 8> limit;
    detail::put_be64(limit.data(), static_cast<std::uint64_t>(
                                       std::clamp<std::size_t>(opts_.sweep_chunk, 1, std::size_t{INT64_MAX})));
    PgParams params;
    params.add(bytes_of(limit));
    // Idempotent: running it again deletes only rows that are expired anyway.
    Result<PgReply> reply = co_await execute(*connections_[lease->slot()], statement, params, true, deadline);
    if (!reply)
        co_return reply.error();
    Result<std::int64_t> deleted = int8_at(reply->result.get(), 0, 0);
    if (!deleted)
        co_return deleted.error();
    co_return static_cast<std::uint64_t>(*deleted);
}

core::awaitable<Result<std::uint64_t>> PostgresStorage::sweep()
{
    std::uint64_t total = 0;
    if (opts_.metric_ttl.count() <= 0)
        co_return total;
    const std::size_t chunk = std::max<std::size_t>(opts_.sweep_chunk, 1);
    for (const char* statement : {gauge_sweep, counter_sweep}) {
        for (;;) {
            Result<std::uint64_t> deleted = co_await sweep_chunk(statement);
            if (!deleted)
                co_return deleted.error();
            total += *deleted;
            expired_.fetch_add(*deleted, std::memory_order_relaxed);
            forget(static_cast<std::size_t>(*deleted));
            if (*deleted < chunk || closed_)
                break;
        }
    }
    if (total != 0)
        core::log::debug("postgres: sweep deleted {} expired metrics", total);
    co_return total;
}

core::awaitable<void> PostgresStorage::sweep_timer_loop(std::size_t running_slot)
{
    const Lease running{sweep_running_, running_slot};
    const auto interval = opts_.sweep_interval.count() > 0
                              ? opts_.sweep_interval
                              : std::clamp<std::chrono::milliseconds>(opts_.metric_ttl / 4, std::chrono::seconds{1},
                                                                      std::chrono::minutes{1});
    while (!closed_) {
        sweep_timer_.expires_after(interval);
        // Cancelled by close(), which sets closed_ first.
        (void)co_await sweep_timer_.async_wait(core::use_nothrow_awaitable);
        if (closed_)
            break;
        // Failures are logged by execute(); the next tick tries again.
        (void)co_await sweep();
    }
}

core::awaitable<bool> PostgresStorage::ping()
{
    if (closed_)
        co_return false;
    const auto deadline = Clock::now() + opts_.ping_timeout;
    std::size_t slot = 0;
    if (!ping_pool_.try_acquire(slot)) {  // another ping in progress: wait for it, within the timeout
        auto [ec, granted] = co_await acquire_before(ping_pool_, deadline);
        if (ec)
            co_return false;
        slot = granted;
    }
    Lease lease{ping_pool_, slot};
    PgConnection& conn = *ping_connection_;
    PgReply reply;
    if (!conn.usable())
        reply = co_await setup(conn, deadline, deadline, false);
    if (reply.failure == Failure::none)
        reply = co_await conn.query("SELECT 1", deadline);
    const bool ok = reply.failure == Failure::none;
    if (healthy_.exchange(ok) != ok) {
        if (ok)
            core::log::info("postgres: database reachable again");
        else
            core::log::warn("postgres: ping failed: {}", reply.reason);
    }
    co_return ok;
}

core::awaitable<void> PostgresStorage::close()
{
    if (closed_.exchange(true))
        co_return;
    asio::post(sweep_strand_, [this] { sweep_timer_.cancel(); });
    {
        auto [ec, slot] = co_await sweep_running_.async_acquire(core::use_nothrow_awaitable);
        if (!ec)
            sweep_running_.release(slot);
    }
    // Every slot comes back when its call ends (each is bounded by its timeouts, and no retry
    // starts once closed); calls still queued see closed_ and hand their slot on.
    for (std::size_t i = 0; i < connections_.size(); ++i) {
        auto [ec, slot] = co_await pool_.async_acquire(core::use_nothrow_awaitable);
        if (!ec)
            connections_[slot]->reset();
    }
    auto [ec, slot] = co_await ping_pool_.async_acquire(core::use_nothrow_awaitable);
    if (!ec)
        ping_connection_->reset();
    pool_.shutdown();
    ping_pool_.shutdown();
    sweep_running_.shutdown();
    core::log::info("postgres: connections closed");
}

void PostgresStorage::Stats::statement(std::chrono::steady_clock::duration took, bool ok) noexcept
{
    const double seconds = std::chrono::duration<double>(took).count();
    const auto bucket = static_cast<std::size_t>(
        std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin());
    buckets[bucket].fetch_add(1, std::memory_order_relaxed);
    nanoseconds.fetch_add(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()),
                          std::memory_order_relaxed);
    if (!ok)
        failures.fetch_add(1, std::memory_order_relaxed);
}

void PostgresStorage::write_self_metrics(core::Exposition& out) const
{
    out.gauge_family("metrics_server_postgres_connections_in_use", "PostgreSQL connections lent to requests now.");
    out.sample("metrics_server_postgres_connections_in_use", {}, stats_.in_use.load(std::memory_order_relaxed));
    out.gauge_family("metrics_server_postgres_requests_waiting", "Requests waiting for a PostgreSQL connection now.");
    out.sample("metrics_server_postgres_requests_waiting", {},
               static_cast<std::uint64_t>(waiting_.load(std::memory_order_relaxed)));
    out.counter_family("metrics_server_postgres_statement_errors_total",
                       "Statement attempts that failed (connection, timeout or SQL errors; retries included).");
    out.sample("metrics_server_postgres_statement_errors_total", {}, stats_.failures.load(std::memory_order_relaxed));
    out.histogram_family("metrics_server_postgres_statement_duration_seconds",
                         "Time of each statement attempt, connecting included.");
    std::uint64_t cumulative = 0;
    for (std::size_t k = 0; k < stats_.buckets.size(); ++k) {
        cumulative += stats_.buckets[k].load(std::memory_order_relaxed);
        fmt::memory_buffer le;
        if (k < stats_.bounds.size())
            core::Exposition::write_double(le, stats_.bounds[k]);
        else
            le.append(std::string_view{"+Inf"});
        out.sample("metrics_server_postgres_statement_duration_seconds_bucket", {{"le", {le.data(), le.size()}}},
                   cumulative);
    }
    out.sample("metrics_server_postgres_statement_duration_seconds_sum", {},
               static_cast<double>(stats_.nanoseconds.load(std::memory_order_relaxed)) / 1e9);
    out.sample("metrics_server_postgres_statement_duration_seconds_count", {}, cumulative);
    out.counter_family("metrics_server_metrics_deleted_total", "Metrics removed by DELETE requests.");
    out.sample("metrics_server_metrics_deleted_total", {}, removed());
    out.counter_family("metrics_server_metrics_expired_total", "Metrics removed because their TTL had passed.");
    out.sample("metrics_server_metrics_expired_total", {}, expired());
    out.gauge_family("metrics_server_postgres_stored_metrics",
                     "Rows as this daemon counts them for --max-metrics: both tables at its first connection, "
                     "plus its own inserts, minus its own deletes.");
    out.sample("metrics_server_postgres_stored_metrics", {}, static_cast<std::uint64_t>(stored()));
    out.counter_family("metrics_server_metrics_refused_total",
                       "Updates refused because they would add a metric beyond --max-metrics (507).");
    out.sample("metrics_server_metrics_refused_total", {}, refused());
}

}  // namespace storage
