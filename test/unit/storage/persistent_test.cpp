#include "storage/persistent.hpp"
#include "support/memory.hpp"

#include "support.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using core::Errc;
using core::Kind;
using core::Metric;
using core::OwnedMetric;
using core::Result;
using storage::MemoryStorage;
using storage::PersistentStorage;
using storage::SnapshotFile;

/// What the file on disk holds right now.
std::vector<OwnedMetric> on_disk(const SnapshotFile& file)
{
    auto loaded = file.load();
    REQUIRE(loaded);
    return std::move(*loaded);
}

// `store` outlives the coroutine (owned by the test case); `id` is owned by the frame.
asio::awaitable<void> increment(storage::PersistentStorage& store, std::string id, int& done)
{
    auto r = co_await store.apply(Metric::counter(id, 1));
    if (r)
        ++done;
}

}  // namespace

TEST_CASE("with interval 0 an update is on disk when apply completes")
{
    test::TempDir dir;
    MemoryStorage memory;
    SnapshotFile file{dir.file("db.json")};
    PersistentStorage store{asio::system_executor{}, memory, file, 0ms};

    auto r = test::run_result(store.apply(Metric::gauge("g", 2.5)));
    REQUIRE(r);
    CHECK(*r == Metric::gauge("g", 2.5));
    CHECK(on_disk(file) == std::vector<OwnedMetric>{{"g", Kind::gauge, 2.5, 0}});

    SUBCASE("and so is a batch") {
        const std::vector<Metric> batch{Metric::counter("c", 4), Metric::counter("c", 5)};
        std::vector<Metric> stored;
        REQUIRE(test::run_result(store.apply_batch(batch, stored)));
        CHECK(stored == std::vector<Metric>{Metric::counter("c", 4), Metric::counter("c", 9)});
        CHECK(on_disk(file) == std::vector<OwnedMetric>{{"c", Kind::counter, 0, 9}, {"g", Kind::gauge, 2.5, 0}});
    }
    SUBCASE("a rejected update writes nothing") {
        REQUIRE(test::run_result(store.apply(Metric::counter("big", INT64_MAX))));
        const auto writes = store.writes();
        CHECK(test::run_result(store.apply(Metric::counter("big", 1))).error() == Errc::counter_overflow);
        CHECK(store.writes() == writes);
    }
    SUBCASE("reads see memory") {
        CHECK(test::run_result(store.get(Kind::gauge, "g"))->value == 2.5);
        CHECK(test::run_result(store.list())->size() == 1);
        CHECK(test::run(store.ping()));
    }
    test::run(store.close());
}

TEST_CASE("with interval 0 concurrent updates share snapshot writes")
{
    test::TempDir dir;
    MemoryStorage memory;
    SnapshotFile file{dir.file("db.json")};
    PersistentStorage store{asio::system_executor{}, memory, file, 0ms};

    constexpr int updates = 200;
    int done = 0;
    asio::io_context ioc;
    for (int i = 0; i < updates; ++i)
        asio::co_spawn(ioc, increment(store, "c" + std::to_string(i % 10), done), [](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e);
        });
    ioc.run();
    CHECK(done == updates);
    CHECK(store.writes() >= 1);
    CHECK(store.writes() < updates / 2);
    const auto disk = on_disk(file);
    REQUIRE(disk.size() == 10);
    for (const auto& m : disk)
        CHECK(m.delta == updates / 10);
    test::run(store.close());
}

TEST_CASE("close writes the final snapshot and is idempotent")
{
    test::TempDir dir;
    MemoryStorage memory;
    SnapshotFile file{dir.file("db.json")};
    PersistentStorage store{asio::system_executor{}, memory, file, 1h};

    REQUIRE(test::run_result(store.apply(Metric::counter("c", 3))));
    CHECK(store.writes() == 0);  // the first periodic snapshot is an hour away
    CHECK_FALSE(std::filesystem::exists(file.path()));

    test::run(store.close());
    CHECK(store.writes() == 1);
    CHECK(on_disk(file) == std::vector<OwnedMetric>{{"c", Kind::counter, 0, 3}});
    test::run(store.close());
    CHECK(store.writes() == 1);
}

TEST_CASE("destroying the store without close still writes the final snapshot")
{
    test::TempDir dir;
    MemoryStorage memory;
    SnapshotFile file{dir.file("db.json")};
    {
        PersistentStorage store{asio::system_executor{}, memory, file, 1h};
        REQUIRE(test::run_result(store.apply(Metric::gauge("g", 1))));
    }
    CHECK(on_disk(file) == std::vector<OwnedMetric>{{"g", Kind::gauge, 1, 0}});
}

TEST_CASE("with interval 0 a failed snapshot fails the update, which stays in memory")
{
    test::TempDir dir;
    MemoryStorage memory;
    SnapshotFile file{dir.file("missing/db.json")};
    PersistentStorage store{asio::system_executor{}, memory, file, 0ms};

    CHECK(test::run_result(store.apply(Metric::gauge("g", 1))).error() == Errc::io_error);
    std::vector<Metric> stored;
    const std::vector<Metric> batch{Metric::gauge("h", 1)};
    CHECK(test::run_result(store.apply_batch(batch, stored)).error() == Errc::io_error);
    CHECK(test::gauge(memory.map(), "g") == 1);
    CHECK(test::gauge(memory.map(), "h") == 1);
    test::run(store.close());
}

TEST_CASE("with interval 0 an update after close cannot be made durable")
{
    test::TempDir dir;
    MemoryStorage memory;
    SnapshotFile file{dir.file("db.json")};
    PersistentStorage store{asio::system_executor{}, memory, file, 0ms};
    test::run(store.close());
    CHECK(test::run_result(store.apply(Metric::gauge("late", 1))).error() == Errc::storage_unavailable);
}

TEST_CASE("restore loads a snapshot file into memory")
{
    test::TempDir dir;
    SnapshotFile file{dir.file("db.json")};
    MemoryStorage memory;
    REQUIRE(memory.map().update(Metric::gauge("stale", 1), memory.stamp()));

    SUBCASE("a written snapshot comes back") {
        const std::vector<OwnedMetric> saved{{"c", Kind::counter, 0, 7}, {"g", Kind::gauge, 0.5, 0}};
        REQUIRE(file.write(saved));
        auto n = PersistentStorage::restore(memory, file);
        REQUIRE(n);
        CHECK(*n == 2);
        auto listed = memory.map().list();
        for (auto& m : listed)
            m.updated_at = 0;  // unknown in the file: restore stamps it with the time of the restart
        CHECK(listed == saved);
    }
    SUBCASE("a missing file loads nothing") {
        auto n = PersistentStorage::restore(memory, file);
        REQUIRE(n);
        CHECK(*n == 0);
    }
    SUBCASE("a corrupt file is an error and leaves memory alone") {
        test::write_file(file.path(), "[{");
        CHECK(PersistentStorage::restore(memory, file).error() == Errc::corrupt_snapshot);
        CHECK(test::gauge(memory.map(), "stale") == 1);
    }
}

TEST_CASE("apply_now answers at once on an interval and defers to the coroutine with interval 0")
{
    test::TempDir dir;
    MemoryStorage memory;
    SnapshotFile file{dir.file("db.json")};

    SUBCASE("interval: at once, and the next snapshot holds the change") {
        PersistentStorage store{asio::system_executor{}, memory, file, 1h};
        auto r = store.apply_now(Metric::counter("c", 3));
        REQUIRE(r);
        REQUIRE(*r);
        CHECK(**r == Metric::counter("c", 3));
        CHECK(**store.apply_now(Metric::counter("c", 4)) == Metric::counter("c", 7));
        CHECK(**store.get_now(Kind::counter, "c") == Metric::counter("c", 7));
        CHECK(store.get_now(Kind::gauge, "c")->error() == Errc::not_found);
        test::run(store.close());
        CHECK(on_disk(file) == std::vector<OwnedMetric>{{"c", Kind::counter, 0, 7}});
    }
    SUBCASE("interval 0: not at once, nothing changed") {
        PersistentStorage store{asio::system_executor{}, memory, file, 0ms};
        CHECK_FALSE(store.apply_now(Metric::gauge("g", 1)));
        CHECK(memory.map().size() == 0);
        CHECK(store.get_now(Kind::gauge, "g")->error() == Errc::not_found);
    }
}
