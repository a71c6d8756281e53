// PostgresStorage against a real server. Start one with `tools/pg.sh start DIR`, then set
// METRICS_TEST_DSN to the DSN it prints and METRICS_TEST_PGDIR to DIR (the restart cases).
// Without METRICS_TEST_DSN the binary fails, unless METRICS_SKIP_POSTGRES=1 says to skip.

#include "storage/postgres.hpp"

#include "support/run.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using core::awaitable;
using storage::Errc;
using storage::Kind;
using storage::Metric;
using storage::Op;
using storage::Request;
using storage::Result;
using storage::OwnedMetric;
using storage::PostgresOptions;
using storage::PostgresStorage;

namespace {

const char* env(const char* name)
{
    const char* v = std::getenv(name);
    return v && *v ? v : nullptr;
}

const char* dsn() { return env("METRICS_TEST_DSN"); }
bool no_database() { return dsn() == nullptr; }
bool no_cluster_dir() { return no_database() || env("METRICS_TEST_PGDIR") == nullptr; }

const std::string long_name(255, 'z');

constexpr std::int64_t max64 = std::numeric_limits<std::int64_t>::max();

// Short pauses: a restart takes about a second, and the whole schedule covers several.
PostgresOptions test_options()
{
    PostgresOptions opts;
    opts.retry_delays = {100ms, 300ms, 1s, 2s, 4s, 8s};
    return opts;
}

// Blocking libpq is fine here: the storage under test is idle meanwhile.
void sql(const char* statement)
{
    PGconn* c = PQconnectdb(dsn());
    REQUIRE_MESSAGE(PQstatus(c) == CONNECTION_OK, PQerrorMessage(c));
    PGresult* r = PQexec(c, statement);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    CHECK_MESSAGE(ok, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

// A storage on the test database, both tables empty.
awaitable<std::unique_ptr<PostgresStorage>> open_clean(PostgresOptions opts = test_options())
{
    auto store = co_await PostgresStorage::open(co_await asio::this_coro::executor, dsn(), opts);
    REQUIRE(store);
    sql("TRUNCATE gauges, counters");
    co_return std::move(*store);
}

// Also called from another thread, hence CHECK rather than REQUIRE.
void pg_tool(const char* command)
{
    const std::string line = std::string{METRICS_SOURCE_ROOT} + "/tools/pg.sh " + command + " '" +
                             env("METRICS_TEST_PGDIR") + "' >/dev/null";
    CHECK_MESSAGE(std::system(line.c_str()) == 0, line);
}

// The storage's one entry point, spelled per operation for the tests.
awaitable<Result<Metric>> update(PostgresStorage& store, Metric m)
{
    co_return co_await store.run(Request{Op::update, m});
}

awaitable<Result<Metric>> get(PostgresStorage& store, Kind kind, std::string_view id)
{
    co_return co_await store.run(Request{Op::get, Metric{id, kind, 0, 0}});
}

awaitable<Result<Metric>> remove(PostgresStorage& store, Kind kind, std::string_view id)
{
    co_return co_await store.run(Request{Op::remove, Metric{id, kind, 0, 0}});
}

// `batch` and `stored` outlive the call.
awaitable<Result<void>> update_batch(PostgresStorage& store, std::span<const Metric> batch, std::vector<Metric>& stored)
{
    Result<Metric> done = co_await store.run(Request{Op::update_batch, Metric{}, batch, &stored});
    if (!done)
        co_return done.error();
    co_return Result<void>{};
}

std::uint64_t bits(double v) { return std::bit_cast<std::uint64_t>(v); }

awaitable<void> expect_unusable_dsn(std::string text)
{
    auto ex = co_await asio::this_coro::executor;
    PostgresOptions opts;
    auto store = co_await PostgresStorage::open(ex, std::move(text), opts);
    CHECK(store.error() == Errc::storage_unavailable);
}

// `out` outlives the call (the caller blocks until it completes).
awaitable<void> open_into(std::unique_ptr<PostgresStorage>& out)
{
    auto store = co_await PostgresStorage::open(co_await asio::this_coro::executor, dsn(), test_options());
    if (store)
        out = std::move(*store);
}

awaitable<void> read_counter(PostgresStorage& store, std::string_view id, std::int64_t& out)
{
    auto m = co_await get(store, Kind::counter, id);
    out = m ? m->delta : -1;
}

void block_on(asio::thread_pool& threads, awaitable<void> coro)
{
    asio::co_spawn(threads, std::move(coro), asio::use_future).get();
}

// The first column of the first row of `statement` on the test database, as text.
std::string sql_value(const std::string& conninfo, const char* statement)
{
    PGconn* c = PQconnectdb(conninfo.c_str());
    REQUIRE_MESSAGE(PQstatus(c) == CONNECTION_OK, PQerrorMessage(c));
    PGresult* r = PQexec(c, statement);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    CHECK_MESSAGE(ok, PQresultErrorMessage(r));
    std::string value = ok && PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    PQfinish(c);
    return value;
}

std::int64_t sql_int(const std::string& conninfo, const char* statement)
{
    return std::stoll(sql_value(conninfo, statement));
}

std::string read_fixture(const char* name)
{
    std::ifstream in{std::string{METRICS_SOURCE_ROOT} + "/test/fixtures/" + name};
    REQUIRE_MESSAGE(in, name);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// A database of its own on the test server, dropped at the end: for schemas other than ours.
class ScratchDatabase {
public:
    ScratchDatabase() : name_("metrics_scratch_" + std::to_string(std::random_device{}()))
    {
        sql(("CREATE DATABASE " + name_).c_str());
        PQconninfoOption* options = PQconninfoParse(::dsn(), nullptr);
        REQUIRE(options);
        for (PQconninfoOption* o = options; o->keyword; ++o) {
            const std::string_view key = o->keyword;
            const char* value = key == "dbname" ? name_.c_str() : o->val;
            if (!value)
                continue;
            std::string quoted;
            for (const char* p = value; *p; ++p) {
                if (*p == '\\' || *p == '\'')
                    quoted += '\\';
                quoted += *p;
            }
            dsn_ += fmt::format("{}='{}' ", key, quoted);
        }
        PQconninfoFree(options);
    }
    ~ScratchDatabase() { sql(("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)").c_str()); }
    ScratchDatabase(const ScratchDatabase&) = delete;
    ScratchDatabase& operator=(const ScratchDatabase&) = delete;

    const std::string& dsn() const { return dsn_; }
    std::string value(const char* statement) const { return sql_value(dsn_, statement); }
    std::int64_t integer(const char* statement) const { return sql_int(dsn_, statement); }
    void load(const char* fixture) const { (void)value(read_fixture(fixture).c_str()); }

private:
    std::string name_;
    std::string dsn_;
};

awaitable<std::unique_ptr<PostgresStorage>> open_on(std::string conninfo, PostgresOptions opts = test_options())
{
    auto store = co_await PostgresStorage::open(co_await asio::this_coro::executor, std::move(conninfo), opts);
    REQUIRE(store);
    co_return std::move(*store);
}

// Unix milliseconds of a timestamp literal, as the server reads it in a default session.
std::int64_t server_millis(const std::string& literal)
{
    return sql_int(dsn(), ("SELECT floor(extract(epoch FROM " + literal + ") * 1000)::int8").c_str());
}

const OwnedMetric* find(const std::vector<OwnedMetric>& all, Kind kind, std::string_view id)
{
    auto it = std::find_if(all.begin(), all.end(), [&](const OwnedMetric& m) { return m.kind == kind && m.id == id; });
    return it == all.end() ? nullptr : &*it;
}

}  // namespace

TEST_CASE("the PostgreSQL suite has a database to test against")
{
    const bool skipping = env("METRICS_SKIP_POSTGRES") && std::string_view{env("METRICS_SKIP_POSTGRES")} == "1";
    CHECK_MESSAGE((!no_database() || skipping),
                  "METRICS_TEST_DSN is not set: start a server with tools/pg.sh start DIR "
                  "(or set METRICS_SKIP_POSTGRES=1 to skip these tests)");
}

TEST_SUITE("postgres" * doctest::skip(no_database()))
{

TEST_CASE("a gauge update replaces the value and a counter update adds its delta")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        CHECK(*co_await update(*store, Metric::gauge("load", 1.5)) == Metric::gauge("load", 1.5));
        CHECK(*co_await update(*store, Metric::gauge("load", -2.25)) == Metric::gauge("load", -2.25));
        CHECK(*co_await update(*store, Metric::counter("hits", 5)) == Metric::counter("hits", 5));
        CHECK(*co_await update(*store, Metric::counter("hits", -7)) == Metric::counter("hits", -2));
        CHECK(*co_await get(*store, Kind::gauge, "load") == Metric::gauge("load", -2.25));
        CHECK(*co_await get(*store, Kind::counter, "hits") == Metric::counter("hits", -2));
        co_await store->close();
    }());
}

TEST_CASE("an unknown metric is not found, and the kinds are separate namespaces")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        CHECK((co_await get(*store, Kind::gauge, "nothing")).error() == Errc::not_found);
        REQUIRE(co_await update(*store, Metric::gauge("both", 3)));
        CHECK((co_await get(*store, Kind::counter, "both")).error() == Errc::not_found);
        REQUIRE(co_await update(*store, Metric::counter("both", 4)));
        CHECK(*co_await get(*store, Kind::gauge, "both") == Metric::gauge("both", 3));
        CHECK(*co_await get(*store, Kind::counter, "both") == Metric::counter("both", 4));
        co_await store->close();
    }());
}

TEST_CASE("list returns every metric sorted by id bytes, the gauge before the counter")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        REQUIRE(co_await update(*store, Metric::counter("b", 2)));
        REQUIRE(co_await update(*store, Metric::gauge("b", 0.5)));
        REQUIRE(co_await update(*store, Metric::gauge("a", 1)));
        REQUIRE(co_await update(*store, Metric::counter("B", 9)));  // 'B' < 'a' in bytes
        auto all = co_await store->list();
        REQUIRE(all);
        for (auto& m : *all) {
            CHECK(m.updated_at > 0);
            m.updated_at = 0;
        }
        const std::array<OwnedMetric, 4> expected{{{"B", Kind::counter, 0, 9},
                                                   {"a", Kind::gauge, 1, 0},
                                                   {"b", Kind::gauge, 0.5, 0},
                                                   {"b", Kind::counter, 0, 2}}};
        CHECK(std::ranges::equal(*all, expected));
        co_await store->close();
    }());
}

TEST_CASE("a batch applies repeated ids in order: counters run up, the last gauge wins")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        REQUIRE(co_await update(*store, Metric::counter("c", 100)));
        const std::array batch{Metric::counter("c", 1),  Metric::gauge("g", 1),
                                        Metric::counter("d", 10), Metric::counter("c", 2),
                                        Metric::gauge("g", 2),    Metric::gauge("h", 7),
                                        Metric::counter("c", -3), Metric::gauge("g", 3)};
        std::vector<Metric> stored;
        REQUIRE(co_await update_batch(*store, batch, stored));
        const std::array expected{Metric::counter("c", 101), Metric::gauge("g", 1),
                                           Metric::counter("d", 10),  Metric::counter("c", 103),
                                           Metric::gauge("g", 2),     Metric::gauge("h", 7),
                                           Metric::counter("c", 100), Metric::gauge("g", 3)};
        CHECK(std::ranges::equal(stored, expected));
        CHECK(stored[0].id.data() == batch[0].id.data());  // views into the input
        CHECK(*co_await get(*store, Kind::counter, "c") == Metric::counter("c", 100));
        CHECK(*co_await get(*store, Kind::counter, "d") == Metric::counter("d", 10));
        CHECK(*co_await get(*store, Kind::gauge, "g") == Metric::gauge("g", 3));
        CHECK(*co_await get(*store, Kind::gauge, "h") == Metric::gauge("h", 7));

        SUBCASE("a batch of gauges only returns them as given")
        {
            const std::array gauges{Metric::gauge("g", 5), Metric::gauge("x", -1)};
            REQUIRE(co_await update_batch(*store, gauges, stored));
            CHECK(std::ranges::equal(stored, gauges));
        }
        SUBCASE("an empty batch changes nothing")
        {
            REQUIRE(co_await update_batch(*store, std::span<const Metric>{}, stored));
            CHECK(stored.empty());
        }
        co_await store->close();
    }());
}

TEST_CASE("a counter overflow is rejected and changes nothing")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        REQUIRE(co_await update(*store, Metric::counter("c", max64 - 1)));
        REQUIRE(co_await update(*store, Metric::gauge("g", 1)));
        const auto before = co_await store->list();
        REQUIRE(before);
        std::vector<Metric> stored;

        SUBCASE("a single update")
        {
            CHECK((co_await update(*store, Metric::counter("c", 2))).error() == Errc::counter_overflow);
        }
        SUBCASE("a batch whose total overflows, with other updates in it")
        {
            const std::array batch{Metric::gauge("g", 2), Metric::counter("new", 1),
                                            Metric::counter("c", 1), Metric::counter("c", 1)};
            CHECK((co_await update_batch(*store, batch, stored)).error() == Errc::counter_overflow);
        }
        SUBCASE("a batch that overflows at one step though its final total fits")
        {
            const std::array batch{Metric::gauge("g", 2), Metric::counter("c", 5),
                                            Metric::counter("c", -10)};
            CHECK((co_await update_batch(*store, batch, stored)).error() == Errc::counter_overflow);
        }
        SUBCASE("a batch whose deltas alone overflow")
        {
            const std::array batch{Metric::counter("fresh", max64), Metric::counter("fresh", max64)};
            CHECK((co_await update_batch(*store, batch, stored)).error() == Errc::counter_overflow);
        }
        CHECK(stored.empty());
        CHECK(*co_await store->list() == *before);
        CHECK(*co_await update(*store, Metric::counter("c", 1)) == Metric::counter("c", max64));
        co_await store->close();
    }());
}

TEST_CASE("names with quotes, backslashes, commas, braces and unicode are stored verbatim")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        const std::array<std::string_view, 11> names{"a\"b", "back\\slash", "com,ma", "{brace}", "NULL",
                                             "'single'", "ünïcödé", "日本", "$1;--", "(x)",
                                                  long_name};
        std::vector<Metric> batch;
        for (const auto& name : names) {
            REQUIRE(co_await update(*store, Metric::gauge(name, 1)));
            batch.push_back(Metric::counter(name, 2));
            batch.push_back(Metric::gauge(name, 3));
        }
        std::vector<Metric> stored;
        REQUIRE(co_await update_batch(*store, batch, stored));
        CHECK(std::ranges::equal(stored, batch));
        for (const auto& name : names) {
            CHECK(*co_await get(*store, Kind::gauge, name) == Metric::gauge(name, 3));
            CHECK(*co_await get(*store, Kind::counter, name) == Metric::counter(name, 2));
        }
        auto all = co_await store->list();
        REQUIRE(all);
        REQUIRE(all->size() == 2 * names.size());
        for (const auto& m : *all)
            CHECK(std::find(names.begin(), names.end(), m.id) != names.end());
        co_await store->close();
    }());
}

TEST_CASE("a name that is not valid UTF-8 is rejected as a bad name")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        CHECK((co_await update(*store, Metric::gauge("bad\xff", 1))).error() == Errc::bad_name);
        CHECK(*co_await update(*store, Metric::gauge("good", 1)) == Metric::gauge("good", 1));
        co_await store->close();
    }());
}

TEST_CASE("gauges round-trip bit-exactly")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        const std::array values{0.1, 1e-300, 1.7976931348623157e308, -0.0, 4.9e-324,
                                         123456.7, -1.0 / 3, 2.2250738585072014e-308};
        std::vector<Metric> batch;
        std::vector<std::string> names;
        for (std::size_t i = 0; i < values.size(); ++i)
            names.push_back("v" + std::to_string(i));
        for (std::size_t i = 0; i < values.size(); ++i) {
            REQUIRE(co_await update(*store, Metric::gauge(names[i], values[i])));
            auto got = co_await get(*store, Kind::gauge, names[i]);
            REQUIRE(got);
            CHECK(bits(got->value) == bits(values[i]));
            batch.push_back(Metric::gauge(names[i], -values[i]));
        }
        std::vector<Metric> stored;
        REQUIRE(co_await update_batch(*store, batch, stored));
        auto all = co_await store->list();
        REQUIRE(all);
        REQUIRE(all->size() == values.size());
        for (const auto& m : *all) {
            const auto i = static_cast<std::size_t>(std::stoul(m.id.substr(1)));
            CHECK(bits(m.value) == bits(-values[i]));
        }
        co_await store->close();
    }());
}

// Several daemons share one database: two pools, several threads and coroutines.
TEST_CASE("two storages incrementing one counter concurrently lose nothing")
{
    asio::thread_pool threads{2};
    std::unique_ptr<PostgresStorage> a, b;
    block_on(threads, open_into(a));
    block_on(threads, open_into(b));
    REQUIRE(a);
    REQUIRE(b);
    sql("TRUNCATE gauges, counters");

    constexpr int workers = 8;
    constexpr int rounds = 25;
    auto work = [](PostgresStorage* store, int id) -> awaitable<int> {
        int failures = 0;
        std::vector<Metric> stored;
        for (int i = 0; i < rounds; ++i) {
            if (!co_await update(*store, Metric::counter("shared", 1)))
                ++failures;
            const std::array batch{Metric::counter("shared", 2), Metric::gauge("last", id),
                                            Metric::counter("shared", 3)};
            if (!co_await update_batch(*store, batch, stored))
                ++failures;
        }
        co_return failures;
    };
    std::vector<std::future<int>> done;
    for (int i = 0; i < workers; ++i)
        done.push_back(asio::co_spawn(asio::make_strand(threads), work(i % 2 ? a.get() : b.get(), i),
                                      asio::use_future));
    int failures = 0;
    for (auto& f : done)
        failures += f.get();
    CHECK(failures == 0);

    std::int64_t total = 0;
    block_on(threads, read_counter(*a, "shared", total));
    CHECK(total == workers * rounds * 6);
    block_on(threads, a->close());
    block_on(threads, b->close());
}

// Every acknowledged delta ends up in exactly one place: a remove's answer or the final total.
TEST_CASE("removes racing batches on one counter lose and double nothing, and no batch is split")
{
    asio::thread_pool threads{2};
    std::unique_ptr<PostgresStorage> store;
    block_on(threads, open_into(store));
    REQUIRE(store);
    sql("TRUNCATE gauges, counters");

    constexpr int writers = 4;
    constexpr int rounds = 30;
    auto write = [](PostgresStorage* s) -> awaitable<std::int64_t> {
        std::int64_t acknowledged = 0;
        std::vector<Metric> stored;
        const std::array batch{Metric::counter("raced", 1), Metric::gauge("raced", 1), Metric::counter("raced", 2)};
        for (int i = 0; i < rounds; ++i) {
            const Result<void> done = co_await update_batch(*s, batch, stored);
            if (!done)
                continue;
            acknowledged += 3;
            CHECK(stored[2].delta - stored[0].delta == 2);  // nothing came between the elements
        }
        co_return acknowledged;
    };
    auto erase = [](PostgresStorage* s) -> awaitable<std::int64_t> {
        std::int64_t taken = 0;
        for (int i = 0; i < rounds; ++i) {
            const Result<Metric> gone = co_await remove(*s, Kind::counter, "raced");
            if (gone)
                taken += gone->delta;
            else
                CHECK(gone.error() == Errc::not_found);
        }
        co_return taken;
    };
    std::vector<std::future<std::int64_t>> writes;
    for (int i = 0; i < writers; ++i)
        writes.push_back(asio::co_spawn(asio::make_strand(threads), write(store.get()), asio::use_future));
    auto erased = asio::co_spawn(asio::make_strand(threads), erase(store.get()), asio::use_future);
    std::int64_t acknowledged = 0;
    for (auto& f : writes)
        acknowledged += f.get();
    const std::int64_t taken = erased.get();
    std::int64_t left = 0;
    block_on(threads, read_counter(*store, "raced", left));
    CHECK(acknowledged == writers * rounds * 3);
    CHECK(taken + std::max<std::int64_t>(left, 0) == acknowledged);
    block_on(threads, store->close());
}

// A blocking libpq session of its own, for a test to hold locks while the storage works.
class Session {
public:
    Session() : conn_(PQconnectdb(dsn())) { REQUIRE_MESSAGE(PQstatus(conn_) == CONNECTION_OK, PQerrorMessage(conn_)); }
    ~Session() { PQfinish(conn_); }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // The first column of the first row, as text; empty for a command.
    std::string run(const char* statement)
    {
        PGresult* r = PQexec(conn_, statement);
        const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        CHECK_MESSAGE(ok, PQresultErrorMessage(r));
        std::string value = ok && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
        PQclear(r);
        return value;
    }

private:
    PGconn* conn_;
};

TEST_CASE("a statement blocked past its deadline is cancelled: it never runs, and no backend is left behind")
{
    test::run([]() -> awaitable<void> {
        const std::string app = "metrics_unit_cancel";
        PostgresOptions opts = test_options();
        opts.pool_size = 1;
        opts.query_timeout = 300ms;
        opts.request_timeout = 1s;
        opts.retry_delays = {100ms, 100ms, 100ms, 100ms, 100ms, 100ms};
        auto opened = co_await PostgresStorage::open(co_await asio::this_coro::executor,
                                                     std::string{dsn()} + "&application_name=" + app, opts);
        REQUIRE(opened);
        auto& store = *opened;
        sql("TRUNCATE gauges, counters");
        REQUIRE(co_await update(*store, Metric::counter("c", 1)));

        Session locker, observer;
        locker.run("BEGIN; LOCK TABLE counters IN ACCESS EXCLUSIVE MODE");
        CHECK((co_await update(*store, Metric::counter("c", 1))).error() == Errc::storage_busy);
        const std::vector<Metric> batch{Metric::counter("c", 2)};
        std::vector<Metric> stored;
        CHECK((co_await update_batch(*store, batch, stored)).error() == Errc::storage_busy);
        CHECK(co_await store->ping());  // SELECT 1 on its own connection: no table lock needed
        const std::string count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + app + "'";
        CHECK(observer.run(count.c_str()) == "2");  // the pool's one connection and the ping's
        // Not even waiting for the lock any more: the statements were cancelled, not abandoned.
        const std::string waiting = count + " AND wait_event_type = 'Lock'";
        CHECK(observer.run(waiting.c_str()) == "0");
        locker.run("COMMIT");

        CHECK(*co_await get(*store, Kind::counter, "c") == Metric::counter("c", 1));
        CHECK(*co_await update(*store, Metric::counter("c", 1)) == Metric::counter("c", 2));
        co_await store->close();
    }());
}

TEST_CASE("ping is true against a live database")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        CHECK(co_await store->ping());
        CHECK(co_await store->ping());
        co_await store->close();
        CHECK_FALSE(co_await store->ping());
        CHECK((co_await get(*store, Kind::gauge, "x")).error() == Errc::storage_unavailable);
    }());
}


TEST_CASE("remove answers the last value, then the metric is gone, and a removed counter starts from zero")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        REQUIRE(co_await update(*store, Metric::gauge("g", 2.5)));
        REQUIRE(co_await update(*store, Metric::counter("c", 40)));
        REQUIRE(co_await update(*store, Metric::counter("c", 2)));
        REQUIRE(co_await update(*store, Metric::counter("g", 1)));  // the other kind stays

        CHECK(*co_await remove(*store, Kind::gauge, "g") == Metric::gauge("g", 2.5));
        CHECK((co_await get(*store, Kind::gauge, "g")).error() == Errc::not_found);
        CHECK(*co_await get(*store, Kind::counter, "g") == Metric::counter("g", 1));
        CHECK(*co_await remove(*store, Kind::counter, "c") == Metric::counter("c", 42));
        CHECK((co_await remove(*store, Kind::counter, "c")).error() == Errc::not_found);
        CHECK((co_await remove(*store, Kind::gauge, "never")).error() == Errc::not_found);
        CHECK(store->removed() == 2);
        CHECK(store->expired() == 0);

        CHECK(*co_await update(*store, Metric::counter("c", 3)) == Metric::counter("c", 3));
        auto all = co_await store->list();
        REQUIRE(all);
        CHECK(all->size() == 2);
        CHECK(find(*all, Kind::gauge, "g") == nullptr);
        co_await store->close();
    }());
}

TEST_CASE("every update stamps updated_at from the database clock, listed in Unix milliseconds")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        const std::int64_t before = server_millis("now()");
        REQUIRE(co_await update(*store, Metric::gauge("g", 1)));
        const std::array batch{Metric::counter("c", 1), Metric::gauge("h", 2)};
        std::vector<Metric> stored;
        REQUIRE(co_await update_batch(*store, batch, stored));
        const std::int64_t after = server_millis("now()");
        auto all = co_await store->list();
        REQUIRE(all);
        REQUIRE(all->size() == 3);
        for (const auto& m : *all) {
            CAPTURE(m.id);
            CHECK(m.updated_at >= before);
            CHECK(m.updated_at <= after);
        }

        sql("UPDATE gauges SET updated_at = '2020-01-02 03:04:05.678+00'");
        sql("UPDATE counters SET updated_at = '2020-01-02 03:04:05.6789+00'");
        all = co_await store->list();
        REQUIRE(all);
        CHECK(find(*all, Kind::gauge, "g")->updated_at == 1577934245678);
        CHECK(find(*all, Kind::counter, "c")->updated_at == 1577934245678);  // whole milliseconds, rounded down

        SUBCASE("by a single update")
        {
            REQUIRE(co_await update(*store, Metric::counter("c", 1)));
            REQUIRE(co_await update(*store, Metric::gauge("g", 1)));
        }
        SUBCASE("by a batch")
        {
            REQUIRE(co_await update_batch(*store, batch, stored));
            const std::array gauge{Metric::gauge("g", 1)};
            REQUIRE(co_await update_batch(*store, gauge, stored));
        }
        all = co_await store->list();
        REQUIRE(all);
        CHECK(find(*all, Kind::gauge, "g")->updated_at >= after);
        CHECK(find(*all, Kind::counter, "c")->updated_at >= after);
        co_await store->close();
    }());
}

// Expiry is tested by moving updated_at into the past, not by waiting.
TEST_CASE("with a TTL, an expired metric is absent from reads and an update restarts it")
{
    test::run([]() -> awaitable<void> {
        PostgresOptions opts = test_options();
        opts.metric_ttl = 1h;
        auto store = co_await open_clean(opts);
        for (const char* name : {"old", "fresh"}) {
            REQUIRE(co_await update(*store, Metric::gauge(name, 5)));
            REQUIRE(co_await update(*store, Metric::counter(name, 100)));
        }
        sql("UPDATE gauges SET updated_at = now() - interval '61 minutes' WHERE name = 'old'");
        sql("UPDATE counters SET updated_at = now() - interval '61 minutes' WHERE name = 'old'");

        CHECK((co_await get(*store, Kind::gauge, "old")).error() == Errc::not_found);
        CHECK((co_await get(*store, Kind::counter, "old")).error() == Errc::not_found);
        CHECK(*co_await get(*store, Kind::counter, "fresh") == Metric::counter("fresh", 100));
        auto all = co_await store->list();
        REQUIRE(all);
        CHECK(all->size() == 2);
        CHECK(find(*all, Kind::counter, "old") == nullptr);
        CHECK(store->expired() == 0);

        SUBCASE("a single update")
        {
            CHECK(*co_await update(*store, Metric::counter("old", 7)) == Metric::counter("old", 7));
            CHECK(*co_await update(*store, Metric::gauge("old", 1)) == Metric::gauge("old", 1));
            CHECK(*co_await update(*store, Metric::counter("fresh", 1)) == Metric::counter("fresh", 101));
            CHECK(*co_await update(*store, Metric::counter("old", 1)) == Metric::counter("old", 8));
            CHECK(store->expired() == 2);
        }
        SUBCASE("a batch, whose running totals start from zero")
        {
            const std::array batch{Metric::counter("old", 7), Metric::gauge("old", 1), Metric::counter("fresh", 1),
                                   Metric::counter("old", 1)};
            std::vector<Metric> stored;
            REQUIRE(co_await update_batch(*store, batch, stored));
            const std::array expected{Metric::counter("old", 7), Metric::gauge("old", 1),
                                      Metric::counter("fresh", 101), Metric::counter("old", 8)};
            CHECK(std::ranges::equal(stored, expected));
            CHECK(store->expired() == 2);
        }
        SUBCASE("an overflow over an expired counter cannot happen: its old total is gone")
        {
            sql("UPDATE counters SET delta = 9223372036854775807 WHERE name = 'old'");
            CHECK(*co_await update(*store, Metric::counter("old", 1)) == Metric::counter("old", 1));
        }
        SUBCASE("remove finds nothing, and deletes the row")
        {
            CHECK((co_await remove(*store, Kind::gauge, "old")).error() == Errc::not_found);
            CHECK(sql_int(dsn(), "SELECT count(*) FROM gauges WHERE name = 'old'") == 0);
            CHECK(store->expired() == 1);
            CHECK(store->removed() == 0);
        }
        CHECK(*co_await get(*store, Kind::gauge, "fresh") == Metric::gauge("fresh", 5));
        co_await store->close();
    }());
}

TEST_CASE("the sweep deletes every expired row in bounded chunks and nothing else")
{
    test::run([]() -> awaitable<void> {
        PostgresOptions opts = test_options();
        opts.metric_ttl = 1h;
        opts.sweep_chunk = 2;
        auto store = co_await open_clean(opts);
        sql("INSERT INTO gauges (name, value, updated_at)"
            " SELECT 'g' || i, i, now() - interval '2 hours' FROM generate_series(1, 5) i");
        sql("INSERT INTO counters (name, delta, updated_at)"
            " SELECT 'c' || i, i, now() - interval '2 hours' FROM generate_series(1, 4) i");
        REQUIRE(co_await update(*store, Metric::gauge("live", 1)));
        REQUIRE(co_await update(*store, Metric::counter("live", 1)));

        auto deleted = co_await store->sweep();
        REQUIRE(deleted);
        CHECK(*deleted == 9);
        CHECK(store->expired() == 9);
        CHECK(sql_int(dsn(), "SELECT (SELECT count(*) FROM gauges) + (SELECT count(*) FROM counters)") == 2);
        deleted = co_await store->sweep();
        REQUIRE(deleted);
        CHECK(*deleted == 0);
        CHECK(*co_await get(*store, Kind::counter, "live") == Metric::counter("live", 1));
        co_await store->close();
    }());
}

TEST_CASE("without a TTL nothing expires and the sweep does nothing")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        REQUIRE(co_await update(*store, Metric::counter("c", 1)));
        sql("UPDATE counters SET updated_at = '1990-01-01 00:00:00+00'");
        CHECK(*co_await get(*store, Kind::counter, "c") == Metric::counter("c", 1));
        auto deleted = co_await store->sweep();
        REQUIRE(deleted);
        CHECK(*deleted == 0);
        CHECK(*co_await update(*store, Metric::counter("c", 1)) == Metric::counter("c", 2));
        co_await store->close();
    }());
}

TEST_CASE("the sweep runs by itself on its timer, and close() stops it")
{
    test::run([]() -> awaitable<void> {
        PostgresOptions opts = test_options();
        opts.metric_ttl = 1h;
        opts.sweep_interval = 20ms;
        auto store = co_await open_clean(opts);
        sql("INSERT INTO counters (name, delta, updated_at) VALUES ('stale', 1, now() - interval '2 hours')");
        asio::steady_timer pause{co_await asio::this_coro::executor};
        for (int i = 0; i < 500 && store->expired() == 0; ++i) {  // at most 10 s
            pause.expires_after(20ms);
            co_await pause.async_wait(asio::use_awaitable);
        }
        CHECK(store->expired() == 1);
        CHECK(sql_int(dsn(), "SELECT count(*) FROM counters WHERE name = 'stale'") == 0);
        co_await store->close();  // test::run fails if the timer were left pending
    }());
}

TEST_CASE("a database written by the Go server is adopted in place, every row kept")
{
    ScratchDatabase db;
    db.load("go_postgres_schema.sql");
    test::run([&db]() -> awaitable<void> {
        auto store = co_await open_on(db.dsn());
        CHECK(*co_await get(*store, Kind::gauge, "Alloc") == Metric::gauge("Alloc", 1234567));
        CHECK(*co_await get(*store, Kind::gauge, "GCCPUFraction") == Metric::gauge("GCCPUFraction", 0.000123));
        CHECK(*co_await get(*store, Kind::gauge, "ünïcödé") == Metric::gauge("ünïcödé", 1e-300));
        CHECK(*co_await get(*store, Kind::counter, "Requests") == Metric::counter("Requests", 9223372036854775000));
        CHECK(*co_await get(*store, Kind::counter, "Negative") == Metric::counter("Negative", -42));
        auto all = co_await store->list();
        REQUIRE(all);
        CHECK(all->size() == 7);
        const std::int64_t stamped = server_millis("'2024-05-01 10:00:00.123'::timestamp::timestamptz");
        REQUIRE(find(*all, Kind::counter, "PollCount"));
        CHECK(find(*all, Kind::counter, "PollCount")->updated_at == stamped);
        CHECK(find(*all, Kind::gauge, "Alloc")->updated_at == stamped);

        CHECK(*co_await update(*store, Metric::counter("PollCount", 5)) == Metric::counter("PollCount", 9005));
        CHECK(*co_await remove(*store, Kind::gauge, "RandomValue") == Metric::gauge("RandomValue", -0.5));
        const std::array batch{Metric::counter("PollCount", 1), Metric::gauge("New", 1)};
        std::vector<Metric> stored;
        REQUIRE(co_await update_batch(*store, batch, stored));
        CHECK(stored[0] == Metric::counter("PollCount", 9006));
        co_await store->close();
    }());
    CHECK(db.value("SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_name)"
                   " FROM information_schema.columns WHERE table_name = 'counters'") ==
          "delta bigint, name text, updated_at timestamp with time zone");
    CHECK(db.integer("SELECT count(*) FROM go_schema_migrations WHERE version = 1 AND NOT dirty") == 1);
    CHECK(db.value("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations") == "1,2");
}

TEST_CASE("the Go server's other table shapes are adopted too: unique indexes, integer totals, NULL times")
{
    ScratchDatabase db;
    db.load("go_postgres_schema_plain.sql");
    const std::int64_t before = server_millis("now()");
    test::run([&db, before]() -> awaitable<void> {
        auto store = co_await open_on(db.dsn());
        auto all = co_await store->list();
        REQUIRE(all);
        REQUIRE(all->size() == 3);
        CHECK(find(*all, Kind::gauge, "load")->updated_at == server_millis("'2024-05-01 10:00:00+00'::timestamptz"));
        CHECK(find(*all, Kind::gauge, "never_stamped")->updated_at >= before);  // stamped by the migration
        CHECK(find(*all, Kind::counter, "hits")->delta == 17);
        CHECK(*co_await update(*store, Metric::counter("hits", max64 - 17)) == Metric::counter("hits", max64));
        CHECK(*co_await update(*store, Metric::gauge("load", 2)) == Metric::gauge("load", 2));
        co_await store->close();
    }());
}

TEST_CASE("a table the migration cannot convert without losing data stops it, and nothing changes")
{
    ScratchDatabase db;
    db.load("go_postgres_schema_plain.sql");
    (void)db.value("INSERT INTO gauges (name, value) VALUES ('no_value', NULL)");
    test::run([&db]() -> awaitable<void> {
        auto store = co_await open_on(db.dsn());
        CHECK_FALSE(co_await get(*store, Kind::gauge, "load"));
        co_await store->close();
    }());
    CHECK(db.integer("SELECT count(*) FROM gauges") == 3);
    CHECK(db.value("SELECT data_type FROM information_schema.columns"
                   " WHERE table_name = 'counters' AND column_name = 'value'") == "integer");
    CHECK(db.value("SELECT to_regclass('schema_migrations')::text") == "");
}

TEST_CASE("a database of our first schema version gains updated_at and keeps its rows")
{
    ScratchDatabase db;
    (void)db.value("CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                   " applied_at timestamptz NOT NULL DEFAULT now());"
                   "INSERT INTO schema_migrations (version) VALUES (1);"
                   "CREATE TABLE gauges (name text PRIMARY KEY, value double precision NOT NULL);"
                   "CREATE TABLE counters (name text PRIMARY KEY, delta bigint NOT NULL);"
                   "INSERT INTO gauges VALUES ('g', 1.5); INSERT INTO counters VALUES ('c', 12)");
    test::run([&db]() -> awaitable<void> {
        auto store = co_await open_on(db.dsn());
        auto all = co_await store->list();
        REQUIRE(all);
        REQUIRE(all->size() == 2);
        CHECK(all->at(0).id == "c");
        CHECK(all->at(0).delta == 12);
        CHECK(all->at(0).updated_at > 0);
        CHECK(all->at(1).value == 1.5);
        co_await store->close();
    }());
    CHECK(db.value("SELECT to_regclass('go_schema_migrations')::text") == "");
}

TEST_CASE("two daemons adopting one Go database at once migrate it once")
{
    ScratchDatabase db;
    db.load("go_postgres_schema.sql");
    asio::thread_pool threads{2};
    auto open_pair = [&db](std::unique_ptr<PostgresStorage>& out) -> awaitable<void> {
        out = co_await open_on(db.dsn());
    };
    std::unique_ptr<PostgresStorage> a, b;
    auto fa = asio::co_spawn(asio::make_strand(threads), open_pair(a), asio::use_future);
    auto fb = asio::co_spawn(asio::make_strand(threads), open_pair(b), asio::use_future);
    fa.get();
    fb.get();
    REQUIRE(a);
    REQUIRE(b);
    std::int64_t pa = 0, pb = 0;
    block_on(threads, read_counter(*a, "PollCount", pa));
    block_on(threads, read_counter(*b, "PollCount", pb));
    CHECK(pa == 9000);
    CHECK(pb == 9000);
    block_on(threads, a->close());
    block_on(threads, b->close());
    CHECK(db.value("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations") == "1,2");
    CHECK(db.integer("SELECT (SELECT count(*) FROM gauges) + (SELECT count(*) FROM counters)") == 7);
    CHECK(db.integer("SELECT count(*) FROM go_schema_migrations") == 1);

    // And again, on a schema that is already ours.
    std::unique_ptr<PostgresStorage> c;
    block_on(threads, [&]() -> awaitable<void> { c = co_await open_on(db.dsn()); }());
    REQUIRE(c);
    std::int64_t pc = 0;
    block_on(threads, read_counter(*c, "PollCount", pc));
    CHECK(pc == 9000);
    block_on(threads, c->close());
}

}  // TEST_SUITE("postgres")

// These need no database.
TEST_CASE("an unreachable database is not fatal: ping is false and requests fail")
{
    test::run([]() -> awaitable<void> {
        PostgresOptions opts;
        opts.retry_delays = {1ms};
        auto store = co_await PostgresStorage::open(co_await asio::this_coro::executor,
                                                    "postgres://postgres@127.0.0.1:1/metrics?sslmode=disable",
                                                    opts);
        REQUIRE(store);
        CHECK_FALSE(co_await (*store)->ping());
        CHECK((co_await update(**store, Metric::counter("c", 1))).error() == Errc::storage_unavailable);
        std::vector<Metric> stored;
        const std::array batch{Metric::counter("c", 1)};
        CHECK((co_await update_batch(**store, batch, stored)).error() == Errc::storage_unavailable);
        CHECK((co_await (*store)->list()).error() == Errc::storage_unavailable);
        co_await (*store)->close();
    }());
}

TEST_CASE("a malformed DSN is an error, not a crash")
{
    for (const char* bad : {"'postgres://postgres@127.0.0.1/metrics'", "garbage", "host=x nonsense=1",
                            "postgres://[::1"}) {
        CAPTURE(bad);
        test::run(expect_unusable_dsn(bad));
    }
}

TEST_SUITE("postgres restart" * doctest::skip(no_cluster_dir()))
{

TEST_CASE("updates succeed after PostgreSQL restarts, without reopening the storage")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        REQUIRE(co_await update(*store, Metric::counter("c", 5)));
        REQUIRE(co_await store->ping());
        pg_tool("restart");
        CHECK(*co_await update(*store, Metric::counter("c", 1)) == Metric::counter("c", 6));
        std::vector<Metric> stored;
        const std::array batch{Metric::counter("c", 1), Metric::gauge("g", 2)};
        CHECK(co_await update_batch(*store, batch, stored));
        CHECK(*co_await get(*store, Kind::counter, "c") == Metric::counter("c", 7));
        CHECK(co_await store->ping());
        co_await store->close();
    }());
}

TEST_CASE("an update made while PostgreSQL is down succeeds once it is back")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        REQUIRE(co_await update(*store, Metric::counter("c", 5)));
        pg_tool("stop");
        CHECK_FALSE(co_await store->ping());
        // Started from another thread while the update waits between its retries.
        std::jthread starter{[] { pg_tool("start"); }};
        CHECK(*co_await update(*store, Metric::counter("c", 1)) == Metric::counter("c", 6));
        starter.join();
        CHECK(co_await store->ping());
        co_await store->close();
    }());
}

}  // TEST_SUITE("postgres restart")

TEST_CASE("the metric cap: rows at the first connection count, N are admitted, a new name beyond is refused with "
          "nothing changed, and deletes and the sweep free room")
{
    // Outside the coroutine: GCC 12 rejects initializer lists in one ("array used as initializer").
    const std::vector<Metric> straddling{Metric::gauge("c", 1), Metric::counter("b", 1), Metric::gauge("d", 1)};
    const std::vector<Metric> fitting{Metric::gauge("c", 1), Metric::gauge("c", 2), Metric::counter("b", 1)};
    const std::vector<Metric> existing{Metric::counter("b", 1), Metric::gauge("pre", 2)};
    test::run([&]() -> awaitable<void> {
        co_await (co_await open_clean())->close();  // the schema exists, the tables are empty
        sql("INSERT INTO gauges (name, value, updated_at) VALUES ('pre', 1, now())");
        PostgresOptions opts = test_options();
        opts.max_metrics = 4;
        opts.metric_ttl = 1h;
        auto opened = co_await PostgresStorage::open(co_await asio::this_coro::executor, dsn(), opts);
        REQUIRE(opened);
        auto& store = *opened;
        CHECK(store->stored() == 1);
        REQUIRE(co_await update(*store, Metric::gauge("a", 1)));
        REQUIRE(co_await update(*store, Metric::counter("b", 1)));
        CHECK(store->stored() == 3);

        // Two new names and room for one: refused whole, the counter untouched.
        std::vector<Metric> stored;
        CHECK((co_await update_batch(*store, straddling, stored)).error() == Errc::too_many_metrics);
        CHECK(*co_await get(*store, Kind::counter, "b") == Metric::counter("b", 1));
        CHECK((co_await get(*store, Kind::gauge, "c")).error() == Errc::not_found);
        CHECK((co_await get(*store, Kind::gauge, "d")).error() == Errc::not_found);
        CHECK(store->stored() == 3);

        // One new name, repeated: it fits exactly.
        REQUIRE(co_await update_batch(*store, fitting, stored));
        CHECK(store->stored() == 4);
        CHECK(*co_await get(*store, Kind::gauge, "c") == Metric::gauge("c", 2));

        // At the cap: stored metrics keep updating, new ones (a counter named like a gauge too) are refused.
        CHECK((co_await update(*store, Metric::gauge("e", 1))).error() == Errc::too_many_metrics);
        CHECK((co_await update(*store, Metric::counter("a", 1))).error() == Errc::too_many_metrics);
        CHECK(*co_await update(*store, Metric::gauge("a", 5)) == Metric::gauge("a", 5));
        CHECK(*co_await update(*store, Metric::counter("b", 1)) == Metric::counter("b", 3));
        CHECK(co_await update_batch(*store, existing, stored));
        CHECK(store->refused() == 3);
        CHECK(sql_int(dsn(), "SELECT (SELECT count(*) FROM gauges) + (SELECT count(*) FROM counters)") == 4);
        CHECK(sql_int(dsn(), "SELECT count(*) FROM gauges WHERE name = 'e'") == 0);

        // A delete frees room at once.
        REQUIRE(co_await remove(*store, Kind::gauge, "a"));
        CHECK(store->stored() == 3);
        REQUIRE(co_await update(*store, Metric::gauge("e", 1)));
        CHECK(store->stored() == 4);

        // An expired row not yet swept is updated in place (no new row); the sweep frees its room.
        sql("UPDATE gauges SET updated_at = now() - interval '2 hours' WHERE name IN ('c', 'e')");
        CHECK(*co_await update(*store, Metric::gauge("c", 7)) == Metric::gauge("c", 7));
        CHECK(store->stored() == 4);
        auto deleted = co_await store->sweep();
        REQUIRE(deleted);
        CHECK(*deleted == 1);
        CHECK(store->stored() == 3);
        REQUIRE(co_await update(*store, Metric::gauge("f", 1)));
        CHECK((co_await update(*store, Metric::gauge("g", 1))).error() == Errc::too_many_metrics);
        CHECK(store->stored() == 4);
        co_await store->close();
    }());
}
