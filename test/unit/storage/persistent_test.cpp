#include "storage/persistent.hpp"

#include "failing_io.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using core::Errc;
using core::Kind;
using core::Metric;
using core::OwnedMetric;
using core::Result;
using storage::CompactionStep;
using storage::DurableOptions;
using storage::MemoryMap;
using storage::Op;
using storage::PersistentStorage;
using storage::Request;
using storage::SnapshotFile;

Request update(const Metric& m)
{
    return {Op::update, m, {}, nullptr};
}

Request remove(Kind kind, std::string_view id)
{
    return {Op::remove, Metric{id, kind, 0, 0}, {}, nullptr};
}

std::atomic<std::int64_t> manual_now{1'700'000'000'000};  // the sweep thread reads it
std::int64_t manual_clock() noexcept
{
    return manual_now.load();
}

/// A map, its snapshot file and a durable store over them, in a directory that outlives them
/// (a "process": destroy it and open another on the same files to restart).
struct Process {
    MemoryMap map;
    SnapshotFile file;
    std::unique_ptr<PersistentStorage> store;
    std::string error;

    Process(const std::string& path, DurableOptions options, std::chrono::milliseconds ttl = 0ms,
            std::size_t max_metrics = 0)
        : map(storage::MapOptions{storage::Shards{4}, ttl, &manual_clock, max_metrics}), file(path)
    {
        store = PersistentStorage::open(asio::system_executor{}, map, file, std::move(options), error);
    }
    /// Ends like a crash: no final compaction (what was written stays in the files).
    void crash() { store->abandon(); }

    Result<Metric> run(const Request& r) { return test::run_result(store->run(r)); }
    std::optional<std::int64_t> counter(std::string_view id) const
    {
        auto r = map.get(Kind::counter, id);
        return r ? std::optional<std::int64_t>{r->delta} : std::nullopt;
    }
    std::optional<double> gauge(std::string_view id) const
    {
        auto r = map.get(Kind::gauge, id);
        return r ? std::optional<double>{r->value} : std::nullopt;
    }
};

DurableOptions options(std::chrono::milliseconds interval)
{
    DurableOptions o;
    o.interval = interval;
    o.compact_every = 3600s;  // compactions happen when a test asks
    return o;
}

struct Crash : std::runtime_error {
    Crash() : std::runtime_error("crash") {}
};

}  // namespace

TEST_CASE("an acknowledged update survives a crash in both modes")
{
    for (const auto interval : {0ms, 1000ms}) {
        CAPTURE(interval.count());
        test::TempDir dir;
        const std::string path = dir.file("db.json");
        {
            Process p{path, options(interval)};
            REQUIRE(p.store);
            CHECK(p.store->answers_now() == (interval.count() > 0));
            REQUIRE(p.run(update(Metric::counter("c", 5))));
            REQUIRE(p.run(update(Metric::gauge("g", 2.5))));
            auto c = p.run(update(Metric::counter("c", 2)));
            REQUIRE(c);
            CHECK(c->delta == 7);
            std::vector<Metric> stored;
            const std::vector<Metric> batch{Metric::counter("b", 1), Metric::gauge("g", 3.5), Metric::counter("b", 2)};
            REQUIRE(p.run({Op::update_batch, {}, batch, &stored}));
            CHECK(stored == std::vector<Metric>{Metric::counter("b", 1), Metric::gauge("g", 3.5), Metric::counter("b", 3)});
            p.crash();
        }
        Process again{path, options(interval)};
        REQUIRE(again.store);
        CHECK(again.store->restored().log.records == 4);
        CHECK(again.counter("c") == 7);
        CHECK(again.counter("b") == 3);
        CHECK(again.gauge("g") == 3.5);
        // The next change continues the sequence: one more restart replays it too.
        REQUIRE(again.run(update(Metric::counter("c", 1))));
        again.crash();
        Process third{path, options(interval)};
        CHECK(third.counter("c") == 8);
        CHECK(third.store->restored().log.cut.empty());
    }
}

TEST_CASE("with an interval try_now answers changes at once; with interval 0 only reads")
{
    test::TempDir dir;
    {
        Process p{dir.file("a.json"), options(1000ms)};
        auto r = p.store->try_now(update(Metric::counter("c", 1)));
        REQUIRE(r);
        REQUIRE(*r);
        CHECK((*r)->delta == 1);
    }
    Process p{dir.file("b.json"), options(0ms)};
    CHECK(!p.store->try_now(update(Metric::counter("c", 1))));
    CHECK(!p.counter("c"));  // nothing ran
    auto get = p.store->try_now({Op::get, Metric{"c", Kind::counter, 0, 0}, {}, nullptr});
    REQUIRE(get);
    CHECK(get->error() == Errc::not_found);
}

TEST_CASE("a compaction stopped at any step loses no counter delta and doubles none")
{
    const CompactionStep steps[] = {CompactionStep::rotated, CompactionStep::listed, CompactionStep::snapshot_written,
                                    CompactionStep::dropped};
    for (const auto interval : {0ms, 1000ms}) {
        for (const CompactionStep crash_at : steps) {
            CAPTURE(interval.count());
            CAPTURE(static_cast<int>(crash_at));
            test::TempDir dir;
            const std::string path = dir.file("db.json");
            PersistentStorage* running = nullptr;
            bool armed = true;
            DurableOptions o = options(interval);
            o.compaction_hook = [&](CompactionStep step) {
                // With an interval, a change lands between rotation and listing: the snapshot
                // then holds a change that the new segment holds too.
                if (step == CompactionStep::rotated && interval.count() > 0)
                    REQUIRE(running->try_now(update(Metric::counter("c", 100))));
                if (armed && step == crash_at) {
                    armed = false;
                    throw Crash{};
                }
            };
            std::int64_t expected = 0;
            {
                Process p{path, o};
                REQUIRE(p.store);
                running = p.store.get();
                for (int i = 1; i <= 5; ++i) {
                    REQUIRE(p.run(update(Metric::counter("c", i))));
                    expected += i;
                }
                REQUIRE(p.run(remove(Kind::counter, "c")));  // removed, then counted again from 0
                expected = 0;
                REQUIRE(p.run(update(Metric::counter("c", 7))));
                REQUIRE(p.run(update(Metric::gauge("g", 1.25))));
                expected += 7;
                // A first compaction that completes: the snapshot holds the state up to here.
                armed = false;
                REQUIRE(p.store->compact());
                if (interval.count() > 0)
                    expected += 100;
                REQUIRE(p.run(update(Metric::counter("c", 1000))));
                expected += 1000;
                armed = true;
                CHECK_THROWS_AS((void)p.store->compact(), Crash);
                if (interval.count() > 0)
                    expected += 100;
                p.crash();
            }
            Process again{path, options(interval)};
            REQUIRE(again.store);
            CHECK(again.counter("c") == expected);
            CHECK(again.gauge("g") == 1.25);
            REQUIRE(again.run(update(Metric::counter("c", 1))));
            REQUIRE(again.store->compact());
            again.crash();
            Process third{path, options(interval)};
            CHECK(third.counter("c") == expected + 1);
            CHECK(third.store->restored().log.cut.empty());
        }
    }
}

TEST_CASE("a change whose record cannot be written or synced is answered io_error and not applied")
{
    for (const auto interval : {0ms, 1000ms}) {
        CAPTURE(interval.count());
        test::TempDir dir;
        const std::string path = dir.file("db.json");
        DurableOptions o = options(interval);
        o.file_ops = test::failing_file_ops;
        test::partial_bytes = 3;  // a partial record reaches the file
        {
            Process p{path, o};
            REQUIRE(p.run(update(Metric::counter("c", 1))));

            SUBCASE("a failed write") {
                test::failing_writes = 1;
                CHECK(p.run(update(Metric::counter("c", 1))).error() == Errc::io_error);
                CHECK(!test::run(p.store->ping()));
            }
            SUBCASE("a failed sync (interval 0 waits for it)") {
                if (interval.count() == 0) {
                    test::failing_syncs = 1;
                    CHECK(p.run(update(Metric::counter("c", 1))).error() == Errc::io_error);
                    CHECK(!test::run(p.store->ping()));
                }
            }
            SUBCASE("a failed batch") {
                test::failing_writes = 1;
                std::vector<Metric> stored;
                const std::vector<Metric> batch{Metric::counter("c", 1), Metric::gauge("g", 1)};
                CHECK(p.run({Op::update_batch, {}, batch, &stored}).error() == Errc::io_error);
                CHECK(!p.gauge("g"));
            }
            CHECK(p.counter("c") == 1);
            // Recovery: the next change succeeds and follows on.
            REQUIRE(p.run(update(Metric::counter("c", 10))));
            CHECK(p.counter("c") == 11);
            CHECK(test::run(p.store->ping()));
            p.crash();
        }
        Process again{path, options(interval)};
        CHECK(again.counter("c") == 11);
        CHECK(again.store->restored().log.cut.empty());
    }
}

namespace {

asio::awaitable<void> increment(PersistentStorage& store, int& acked)
{
    auto r = co_await store.run(update(Metric::counter("shared", 1)));
    if (r)
        ++acked;
}

}  // namespace

TEST_CASE("with interval 0 updates that arrive during a sync share the next one")
{
    test::TempDir dir;
    DurableOptions o = options(0ms);
    o.file_ops.fdatasync = &test::gated_fdatasync;
    Process p{dir.file("db.json"), o};
    REQUIRE(p.store);
    test::sync_gate.close();
    const auto syncs_before = p.store->syncs();
    constexpr int updates = 16;
    int acked = 0;
    asio::io_context ioc;
    auto work = asio::make_work_guard(ioc);
    std::thread runner{[&] { ioc.run(); }};
    // The first update alone: its sync is held at the gate...
    asio::co_spawn(ioc, increment(*p.store, acked), asio::detached);
    test::sync_gate.wait_until_entered();
    // ...while every other update is appended behind it.
    for (int i = 1; i < updates; ++i)
        asio::co_spawn(ioc, increment(*p.store, acked), asio::detached);
    while (p.store->pending_records() < updates)
        std::this_thread::yield();
    test::sync_gate.open();
    work.reset();
    runner.join();
    CHECK(acked == updates);
    CHECK(p.counter("shared") == updates);
    CHECK(p.store->syncs() - syncs_before == 2);  // the held one, then one for the fifteen
}

TEST_CASE("a removal is logged: after a restart the metric is gone and a counter starts from 0")
{
    test::TempDir dir;
    const std::string path = dir.file("db.json");
    {
        Process p{path, options(1000ms)};
        REQUIRE(p.run(update(Metric::counter("c", 5))));
        auto removed = p.run(remove(Kind::counter, "c"));
        REQUIRE(removed);
        CHECK(removed->delta == 5);
        CHECK(p.run(remove(Kind::counter, "c")).error() == Errc::not_found);
        CHECK(p.store->removed() == 1);
        p.crash();
    }
    Process again{path, options(1000ms)};
    CHECK(!again.counter("c"));
    REQUIRE(again.run(update(Metric::counter("c", 2))));
    CHECK(again.counter("c") == 2);
}

TEST_CASE("the expiry sweep logs its removals, replayed at restart")
{
    for (const auto interval : {0ms, 1000ms}) {
        CAPTURE(interval.count());
        test::TempDir dir;
        const std::string path = dir.file("db.json");
        DurableOptions o = options(interval);
        o.sweep_every = 1ms;
        manual_now = 1'700'000'000'000;
        {
            Process p{path, o, 1000ms};
            REQUIRE(p.run(update(Metric::counter("old", 1))));
            manual_now += 600;
            REQUIRE(p.run(update(Metric::counter("young", 1))));
            manual_now += 600;  // "old" is 1200 ms old, "young" 600
            // The sweep runs on its own thread: wait (bounded) for it to remove "old".
            for (int i = 0; i < 5000 && p.store->expired() == 0; ++i)
                std::this_thread::sleep_for(1ms);
            REQUIRE(p.store->expired() == 1);
            CHECK(!p.counter("old"));
            CHECK(p.counter("young") == 1);
            p.crash();
        }
        // Back at the time of the first update: only the logged removal can make "old" absent.
        manual_now = 1'700'000'000'000;
        Process again{path, options(interval), 1000ms};
        CHECK(!again.counter("old"));
        CHECK(again.counter("young") == 1);
    }
}

TEST_CASE("restart cuts a torn tail and keeps everything before it")
{
    test::TempDir dir;
    const std::string path = dir.file("db.json");
    {
        Process p{path, options(1000ms)};
        REQUIRE(p.run(update(Metric::counter("c", 1))));
        REQUIRE(p.run(update(Metric::counter("c", 2))));
        p.crash();
    }
    std::string segment;
    for (const auto& e : std::filesystem::directory_iterator(path + ".wal"))
        segment = e.path().string();
    const auto size = std::filesystem::file_size(segment);
    std::filesystem::resize_file(segment, size - 2);
    Process again{path, options(1000ms)};
    REQUIRE(again.store);
    CHECK(again.counter("c") == 1);
    CHECK(again.store->restored().log.cut.find("torn record") != std::string::npos);
}

TEST_CASE("without restore the store starts empty and the old log is gone")
{
    test::TempDir dir;
    const std::string path = dir.file("db.json");
    {
        Process p{path, options(1000ms)};
        REQUIRE(p.run(update(Metric::counter("c", 1))));
        p.crash();
    }
    DurableOptions fresh = options(1000ms);
    fresh.restore = false;
    {
        Process p{path, fresh};
        REQUIRE(p.store);
        CHECK(!p.counter("c"));
        p.crash();
    }
    Process again{path, options(1000ms)};
    CHECK(!again.counter("c"));
}

TEST_CASE("restart loads the Go server's snapshot")
{
    test::TempDir dir;
    const std::string path = dir.file("db.json");
    test::write_file(path, R"({"gauges":{"Alloc":1.5},"counters":{"PollCount":3}})");
    Process p{path, options(1000ms)};
    REQUIRE(p.store);
    CHECK(p.gauge("Alloc") == 1.5);
    CHECK(p.counter("PollCount") == 3);
    REQUIRE(p.run(update(Metric::counter("PollCount", 1))));
    REQUIRE(p.store->compact());
    auto loaded = p.file.load();
    REQUIRE(loaded);
    REQUIRE(loaded->size() == 2);
    CHECK((*loaded)[1].id == "PollCount");
    CHECK((*loaded)[1].delta == 4);
    CHECK((*loaded)[1].seq > 0);
    CHECK((*loaded)[1].updated_at == manual_now.load());
}

TEST_CASE("a corrupt snapshot is a start-up error naming the file")
{
    test::TempDir dir;
    const std::string path = dir.file("db.json");
    test::write_file(path, "[{");
    Process p{path, options(1000ms)};
    CHECK(!p.store);
    CHECK(p.error.find(path) != std::string::npos);
}

TEST_CASE("close compacts, refuses later changes and is idempotent")
{
    for (const auto interval : {0ms, 1000ms}) {
        test::TempDir dir;
        const std::string path = dir.file("db.json");
        Process p{path, options(interval)};
        REQUIRE(p.run(update(Metric::counter("c", 3))));
        test::run(p.store->close());
        test::run(p.store->close());
        CHECK(p.run(update(Metric::counter("c", 1))).error() == Errc::storage_unavailable);
        CHECK(!test::run(p.store->ping()));
        auto loaded = p.file.load();
        REQUIRE(loaded);
        REQUIRE(loaded->size() == 1);
        CHECK(loaded->front().delta == 3);
        // Every segment before the final compaction is gone: only the empty current one is left.
        std::size_t segments = 0;
        for (const auto& e : std::filesystem::directory_iterator(path + ".wal"))
            segments += std::filesystem::file_size(e.path()) == 0 ? 1 : 100;
        CHECK(segments == 1);
    }
}

TEST_CASE("removing an unknown metric answers not_found without a record")
{
    for (const auto interval : {0ms, 1000ms}) {
        test::TempDir dir;
        Process p{dir.file("db.json"), options(interval)};
        REQUIRE(p.run(update(Metric::gauge("g", 1))));
        CHECK(p.run(remove(Kind::gauge, "absent")).error() == Errc::not_found);
        CHECK(p.run(remove(Kind::counter, "g")).error() == Errc::not_found);
        REQUIRE(p.run(remove(Kind::gauge, "g")));
        p.crash();
        Process again{dir.file("db.json"), options(interval)};
        CHECK(again.store->restored().log.records == 2);
        CHECK(!again.gauge("g"));
    }
}

TEST_CASE("a refusal at the cap is not logged, and a restart restores every metric whatever the cap")
{
    for (const auto interval : {0ms, 1000ms}) {
        CAPTURE(interval.count());
        test::TempDir dir;
        const std::string path = dir.file("db.json");
        {
            Process p{path, options(interval), 0ms, 3};
            REQUIRE(p.store);
            REQUIRE(p.run(update(Metric::gauge("a", 1))));
            REQUIRE(p.run(update(Metric::counter("b", 1))));
            REQUIRE(p.run(update(Metric::gauge("gone", 1))));
            REQUIRE(p.run(remove(Kind::gauge, "gone")));
            const std::vector<Metric> batch{Metric::counter("b", 1), Metric::gauge("c", 1), Metric::gauge("d", 1)};
            std::vector<Metric> stored;
            CHECK(p.run({Op::update_batch, {}, batch, &stored}).error() == Errc::too_many_metrics);
            CHECK(p.run(update(Metric::gauge("c", 1))));
            CHECK(p.run(update(Metric::gauge("e", 1))).error() == Errc::too_many_metrics);
            CHECK(p.run(update(Metric::counter("b", 2)))->delta == 3);
            CHECK(p.map.count() == 3);
            CHECK(p.map.refused() == 2);
            p.crash();
        }
        {
            Process again{path, options(interval), 0ms, 3};
            REQUIRE(again.store);
            CHECK(again.store->restored().log.records == 6);  // the refused two are not in the log
            CHECK(again.map.count() == 3);
            CHECK(again.counter("b") == 3);
            CHECK(again.gauge("c") == 1.0);
            CHECK_FALSE(again.gauge("d"));
            CHECK_FALSE(again.gauge("gone"));
            CHECK(again.run(update(Metric::gauge("e", 1))).error() == Errc::too_many_metrics);
            again.crash();
        }
        // A lower cap keeps what is stored and refuses only new names.
        Process lower{path, options(interval), 0ms, 1};
        REQUIRE(lower.store);
        CHECK(lower.map.count() == 3);
        CHECK(lower.map.max_metrics() == 1);
        CHECK(lower.run(update(Metric::counter("b", 1)))->delta == 4);
        CHECK(lower.run(update(Metric::gauge("e", 1))).error() == Errc::too_many_metrics);
        REQUIRE(lower.run(remove(Kind::gauge, "a")));
        REQUIRE(lower.run(remove(Kind::gauge, "c")));
        CHECK(lower.run(update(Metric::gauge("e", 1))).error() == Errc::too_many_metrics);
        REQUIRE(lower.run(remove(Kind::counter, "b")));
        CHECK(lower.run(update(Metric::gauge("e", 1))));
        CHECK(lower.map.count() == 1);
    }
}

namespace {

asio::awaitable<void> add_gauge(PersistentStorage& store, std::string id, int& acked, int& refused)
{
    auto r = co_await store.run(update(Metric::gauge(id, 1)));
    if (r)
        ++acked;
    else if (r.error() == Errc::too_many_metrics)
        ++refused;
}

}  // namespace

TEST_CASE("with interval 0 new names waiting for their sync count against the cap")
{
    test::TempDir dir;
    Process p{dir.file("db.json"), options(0ms), 0ms, 10};
    REQUIRE(p.store);
    int acked = 0;
    int refused = 0;
    asio::io_context ioc;
    for (int i = 0; i < 30; ++i)
        asio::co_spawn(ioc, add_gauge(*p.store, "g" + std::to_string(i), acked, refused), asio::detached);
    ioc.run();
    CHECK(acked == 10);
    CHECK(refused == 20);
    CHECK(p.map.count() == 10);
    CHECK(p.map.size() == 10);
}
