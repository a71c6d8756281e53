// PostgresStorage against a real server. Start one with `tools/pg.sh start DIR`, then set
// METRICS_TEST_DSN to the DSN it prints and METRICS_TEST_PGDIR to DIR (the restart cases).
// Without METRICS_TEST_DSN the binary fails, unless METRICS_SKIP_POSTGRES=1 says to skip.

#include "storage/postgres.hpp"

#include "support/run.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <limits>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using core::awaitable;
using storage::Errc;
using storage::Kind;
using storage::Metric;
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
    auto m = co_await store.get(Kind::counter, id);
    out = m ? m->delta : -1;
}

void block_on(asio::thread_pool& threads, awaitable<void> coro)
{
    asio::co_spawn(threads, std::move(coro), asio::use_future).get();
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
        CHECK(*co_await store->apply(Metric::gauge("load", 1.5)) == Metric::gauge("load", 1.5));
        CHECK(*co_await store->apply(Metric::gauge("load", -2.25)) == Metric::gauge("load", -2.25));
        CHECK(*co_await store->apply(Metric::counter("hits", 5)) == Metric::counter("hits", 5));
        CHECK(*co_await store->apply(Metric::counter("hits", -7)) == Metric::counter("hits", -2));
        CHECK(*co_await store->get(Kind::gauge, "load") == Metric::gauge("load", -2.25));
        CHECK(*co_await store->get(Kind::counter, "hits") == Metric::counter("hits", -2));
        co_await store->close();
    }());
}

TEST_CASE("an unknown metric is not found, and the kinds are separate namespaces")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        CHECK((co_await store->get(Kind::gauge, "nothing")).error() == Errc::not_found);
        REQUIRE(co_await store->apply(Metric::gauge("both", 3)));
        CHECK((co_await store->get(Kind::counter, "both")).error() == Errc::not_found);
        REQUIRE(co_await store->apply(Metric::counter("both", 4)));
        CHECK(*co_await store->get(Kind::gauge, "both") == Metric::gauge("both", 3));
        CHECK(*co_await store->get(Kind::counter, "both") == Metric::counter("both", 4));
        co_await store->close();
    }());
}

TEST_CASE("list returns every metric sorted by id bytes, the gauge before the counter")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        REQUIRE(co_await store->apply(Metric::counter("b", 2)));
        REQUIRE(co_await store->apply(Metric::gauge("b", 0.5)));
        REQUIRE(co_await store->apply(Metric::gauge("a", 1)));
        REQUIRE(co_await store->apply(Metric::counter("B", 9)));  // 'B' < 'a' in bytes
        auto all = co_await store->list();
        REQUIRE(all);
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
        REQUIRE(co_await store->apply(Metric::counter("c", 100)));
        const std::array batch{Metric::counter("c", 1),  Metric::gauge("g", 1),
                                        Metric::counter("d", 10), Metric::counter("c", 2),
                                        Metric::gauge("g", 2),    Metric::gauge("h", 7),
                                        Metric::counter("c", -3), Metric::gauge("g", 3)};
        std::vector<Metric> stored;
        REQUIRE(co_await store->apply_batch(batch, stored));
        const std::array expected{Metric::counter("c", 101), Metric::gauge("g", 1),
                                           Metric::counter("d", 10),  Metric::counter("c", 103),
                                           Metric::gauge("g", 2),     Metric::gauge("h", 7),
                                           Metric::counter("c", 100), Metric::gauge("g", 3)};
        CHECK(std::ranges::equal(stored, expected));
        CHECK(stored[0].id.data() == batch[0].id.data());  // views into the input
        CHECK(*co_await store->get(Kind::counter, "c") == Metric::counter("c", 100));
        CHECK(*co_await store->get(Kind::counter, "d") == Metric::counter("d", 10));
        CHECK(*co_await store->get(Kind::gauge, "g") == Metric::gauge("g", 3));
        CHECK(*co_await store->get(Kind::gauge, "h") == Metric::gauge("h", 7));

        SUBCASE("a batch of gauges only returns them as given")
        {
            const std::array gauges{Metric::gauge("g", 5), Metric::gauge("x", -1)};
            REQUIRE(co_await store->apply_batch(gauges, stored));
            CHECK(std::ranges::equal(stored, gauges));
        }
        SUBCASE("an empty batch changes nothing")
        {
            REQUIRE(co_await store->apply_batch(std::span<const Metric>{}, stored));
            CHECK(stored.empty());
        }
        co_await store->close();
    }());
}

TEST_CASE("a counter overflow is rejected and changes nothing")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        REQUIRE(co_await store->apply(Metric::counter("c", max64 - 1)));
        REQUIRE(co_await store->apply(Metric::gauge("g", 1)));
        const auto before = co_await store->list();
        REQUIRE(before);
        std::vector<Metric> stored;

        SUBCASE("a single update")
        {
            CHECK((co_await store->apply(Metric::counter("c", 2))).error() == Errc::counter_overflow);
        }
        SUBCASE("a batch whose total overflows, with other updates in it")
        {
            const std::array batch{Metric::gauge("g", 2), Metric::counter("new", 1),
                                            Metric::counter("c", 1), Metric::counter("c", 1)};
            CHECK((co_await store->apply_batch(batch, stored)).error() == Errc::counter_overflow);
        }
        SUBCASE("a batch that overflows at one step though its final total fits")
        {
            const std::array batch{Metric::gauge("g", 2), Metric::counter("c", 5),
                                            Metric::counter("c", -10)};
            CHECK((co_await store->apply_batch(batch, stored)).error() == Errc::counter_overflow);
        }
        SUBCASE("a batch whose deltas alone overflow")
        {
            const std::array batch{Metric::counter("fresh", max64), Metric::counter("fresh", max64)};
            CHECK((co_await store->apply_batch(batch, stored)).error() == Errc::counter_overflow);
        }
        CHECK(stored.empty());
        CHECK(*co_await store->list() == *before);
        CHECK(*co_await store->apply(Metric::counter("c", 1)) == Metric::counter("c", max64));
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
            REQUIRE(co_await store->apply(Metric::gauge(name, 1)));
            batch.push_back(Metric::counter(name, 2));
            batch.push_back(Metric::gauge(name, 3));
        }
        std::vector<Metric> stored;
        REQUIRE(co_await store->apply_batch(batch, stored));
        CHECK(std::ranges::equal(stored, batch));
        for (const auto& name : names) {
            CHECK(*co_await store->get(Kind::gauge, name) == Metric::gauge(name, 3));
            CHECK(*co_await store->get(Kind::counter, name) == Metric::counter(name, 2));
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
        CHECK((co_await store->apply(Metric::gauge("bad\xff", 1))).error() == Errc::bad_name);
        CHECK(*co_await store->apply(Metric::gauge("good", 1)) == Metric::gauge("good", 1));
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
            REQUIRE(co_await store->apply(Metric::gauge(names[i], values[i])));
            auto got = co_await store->get(Kind::gauge, names[i]);
            REQUIRE(got);
            CHECK(bits(got->value) == bits(values[i]));
            batch.push_back(Metric::gauge(names[i], -values[i]));
        }
        std::vector<Metric> stored;
        REQUIRE(co_await store->apply_batch(batch, stored));
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
            if (!co_await store->apply(Metric::counter("shared", 1)))
                ++failures;
            const std::array batch{Metric::counter("shared", 2), Metric::gauge("last", id),
                                            Metric::counter("shared", 3)};
            if (!co_await store->apply_batch(batch, stored))
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
        REQUIRE(co_await store->apply(Metric::counter("c", 1)));

        Session locker, observer;
        locker.run("BEGIN; LOCK TABLE counters IN ACCESS EXCLUSIVE MODE");
        CHECK((co_await store->apply(Metric::counter("c", 1))).error() == Errc::storage_busy);
        const std::vector<Metric> batch{Metric::counter("c", 2)};
        std::vector<Metric> stored;
        CHECK((co_await store->apply_batch(batch, stored)).error() == Errc::storage_busy);
        CHECK(co_await store->ping());  // SELECT 1 on its own connection: no table lock needed
        const std::string count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + app + "'";
        CHECK(observer.run(count.c_str()) == "2");  // the pool's one connection and the ping's
        // Not even waiting for the lock any more: the statements were cancelled, not abandoned.
        const std::string waiting = count + " AND wait_event_type = 'Lock'";
        CHECK(observer.run(waiting.c_str()) == "0");
        locker.run("COMMIT");

        CHECK(*co_await store->get(Kind::counter, "c") == Metric::counter("c", 1));
        CHECK(*co_await store->apply(Metric::counter("c", 1)) == Metric::counter("c", 2));
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
        CHECK((co_await store->get(Kind::gauge, "x")).error() == Errc::storage_unavailable);
    }());
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
        CHECK((co_await (*store)->apply(Metric::counter("c", 1))).error() == Errc::storage_unavailable);
        std::vector<Metric> stored;
        const std::array batch{Metric::counter("c", 1)};
        CHECK((co_await (*store)->apply_batch(batch, stored)).error() == Errc::storage_unavailable);
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
        REQUIRE(co_await store->apply(Metric::counter("c", 5)));
        REQUIRE(co_await store->ping());
        pg_tool("restart");
        CHECK(*co_await store->apply(Metric::counter("c", 1)) == Metric::counter("c", 6));
        std::vector<Metric> stored;
        const std::array batch{Metric::counter("c", 1), Metric::gauge("g", 2)};
        CHECK(co_await store->apply_batch(batch, stored));
        CHECK(*co_await store->get(Kind::counter, "c") == Metric::counter("c", 7));
        CHECK(co_await store->ping());
        co_await store->close();
    }());
}

TEST_CASE("an update made while PostgreSQL is down succeeds once it is back")
{
    test::run([]() -> awaitable<void> {
        auto store = co_await open_clean();
        REQUIRE(co_await store->apply(Metric::counter("c", 5)));
        pg_tool("stop");
        CHECK_FALSE(co_await store->ping());
        // Started from another thread while the update waits between its retries.
        std::jthread starter{[] { pg_tool("start"); }};
        CHECK(*co_await store->apply(Metric::counter("c", 1)) == Metric::counter("c", 6));
        starter.join();
        CHECK(co_await store->ping());
        co_await store->close();
    }());
}

}  // TEST_SUITE("postgres restart")
