#include "storage/snapshot.hpp"

#include "support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <sys/stat.h>

namespace {

using core::Errc;
using core::Kind;
using core::OwnedMetric;
using storage::SnapshotFile;

std::vector<OwnedMetric> sample()
{
    return {
        {"Alloc", Kind::gauge, 123456.7, 0},
        {"PollCount", Kind::counter, 0, 42},
        {"denormal", Kind::gauge, std::numeric_limits<double>::denorm_min(), 0},
        {"huge", Kind::gauge, 1.7976931348623157e308, 0},
        {"max", Kind::counter, 0, std::numeric_limits<std::int64_t>::max()},
        {"min", Kind::counter, 0, std::numeric_limits<std::int64_t>::min()},
        {"negative-zero", Kind::gauge, -0.0, 0},
        {"quote\"back\\slash", Kind::gauge, 0.1, 0},
        {"tenth", Kind::gauge, 0.1 + 0.2, 0},
        {"\xc3\xbcnicode", Kind::counter, 0, -7},
    };
}

/// The names in the directory of `path`, sorted.
std::vector<std::string> entries(const std::string& path)
{
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
        names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

TEST_CASE("a snapshot round trip keeps every metric, gauges bit-exact")
{
    test::TempDir dir;
    SnapshotFile file{dir.file("db.json")};
    const auto metrics = sample();
    REQUIRE(file.write(metrics));
    auto loaded = file.load();
    REQUIRE(loaded);
    REQUIRE(loaded->size() == metrics.size());
    for (std::size_t i = 0; i < metrics.size(); ++i) {
        CAPTURE(metrics[i].id);
        CHECK((*loaded)[i].id == metrics[i].id);
        CHECK((*loaded)[i].kind == metrics[i].kind);
        CHECK(std::bit_cast<std::uint64_t>((*loaded)[i].value) == std::bit_cast<std::uint64_t>(metrics[i].value));
        CHECK((*loaded)[i].delta == metrics[i].delta);
    }
}

TEST_CASE("a snapshot file is the JSON array of POST /updates/")
{
    test::TempDir dir;
    SnapshotFile file{dir.file("db.json")};
    REQUIRE(file.write(std::vector<OwnedMetric>{{"c", Kind::counter, 0, 3}, {"g", Kind::gauge, 1.5, 0}}));
    CHECK(test::read_file(file.path()) ==
          R"([{"id":"c","type":"counter","delta":3},{"id":"g","type":"gauge","value":1.5}])");
}

TEST_CASE("a missing snapshot file is an empty store")
{
    test::TempDir dir;
    auto loaded = SnapshotFile{dir.file("absent.json")}.load();
    REQUIRE(loaded);
    CHECK(loaded->empty());
}

TEST_CASE("an empty file or an empty array is an empty store")
{
    test::TempDir dir;
    SnapshotFile file{dir.file("db.json")};
    for (const char* body : {"", "[]", " [ ] \n", "\n"}) {
        CAPTURE(body);
        test::write_file(file.path(), body);
        auto loaded = file.load();
        REQUIRE(loaded);
        CHECK(loaded->empty());
    }
    SUBCASE("and writing an empty store gives []") {
        REQUIRE(file.write({}));
        CHECK(test::read_file(file.path()) == "[]");
    }
}

TEST_CASE("a corrupt snapshot is refused")
{
    test::TempDir dir;
    SnapshotFile file{dir.file("db.json")};
    for (const char* body : {
             "garbage",
             R"([{"id":"c","type":"counter","delta":3})",              // truncated
             R"({"id":"c","type":"counter","delta":3})",               // not an array
             R"([{"id":"c","type":"counter","delta":3}] trailing)",    // trailing bytes
             R"([{"id":"has space","type":"gauge","value":1}])",       // invalid name
             R"([{"id":"","type":"gauge","value":1}])",                // empty name
             R"([{"id":"c","type":"counter","delta":1.5}])",           // fractional counter
             R"([{"id":"g","type":"gauge","value":1e999}])",           // infinite gauge
             R"([{"id":"g","type":"histogram","value":1}])",           // unknown kind
             "\x1f\x8b\x08\x00",                                       // gzip, not JSON
         }) {
        CAPTURE(body);
        test::write_file(file.path(), body);
        CHECK(file.load().error() == Errc::corrupt_snapshot);
    }
    SUBCASE("a directory at the path is unreadable, hence corrupt") {
        std::filesystem::create_directory(dir.file("isdir"));
        CHECK(SnapshotFile{dir.file("isdir")}.load().error() == Errc::corrupt_snapshot);
    }
}

TEST_CASE("a repeated metric in a snapshot is kept in order")
{
    auto parsed = storage::parse_snapshot(
        R"([{"id":"a\u00ff","type":"counter","delta":1},{"id":"a\u00ff","type":"counter","delta":2}])");
    REQUIRE(parsed);
    CHECK(*parsed == std::vector<OwnedMetric>{{"a\xc3\xbf", Kind::counter, 0, 1}, {"a\xc3\xbf", Kind::counter, 0, 2}});
}

TEST_CASE("writing a snapshot leaves no temporary file behind")
{
    test::TempDir dir;
    SnapshotFile file{dir.file("db.json")};
    REQUIRE(file.write(sample()));
    REQUIRE(file.write(sample()));
    CHECK(entries(file.path()) == std::vector<std::string>{"db.json"});
}

TEST_CASE("a failed write keeps the old snapshot")
{
    test::TempDir dir;
    SnapshotFile file{dir.file("db.json")};
    const std::vector<OwnedMetric> old{{"kept", Kind::gauge, 1, 0}};
    REQUIRE(file.write(old));

    SUBCASE("the rename fails") {
        // A non-empty directory in the file's place: rename cannot replace it, even for root.
        std::filesystem::remove(file.path());
        std::filesystem::create_directory(file.path());
        test::write_file(file.path() + "/inside", "x");
        CHECK(file.write(sample()).error() == Errc::io_error);
        CHECK(entries(file.path()) == std::vector<std::string>{"db.json"});  // no temporary file left
    }
    SUBCASE("the directory does not exist") {
        SnapshotFile nowhere{dir.file("missing/db.json")};
        CHECK(nowhere.write(sample()).error() == Errc::io_error);
        CHECK_FALSE(std::filesystem::exists(dir.file("missing")));
    }
}

TEST_CASE("a snapshot file over the size limit is refused without reading it")
{
    test::TempDir dir;
    SnapshotFile file{dir.file("db.json")};
    test::write_file(file.path(), "[]");
    std::filesystem::resize_file(file.path(), storage::max_snapshot_bytes + 1);  // sparse: no disk used
    CHECK(file.load().error() == Errc::corrupt_snapshot);
}

TEST_CASE("a snapshot write never follows a symbolic link planted beside or at the file")
{
    test::TempDir dir;
    SnapshotFile file{dir.file("db.json")};
    const std::string victim = dir.file("victim.txt");
    test::write_file(victim, "precious");

    SUBCASE("at the fixed temporary name other servers used") {
        std::filesystem::create_symlink(victim, file.path() + ".tmp");
    }
    SUBCASE("at the file itself: the rename replaces the link") {
        std::filesystem::create_symlink(victim, file.path());
    }
    REQUIRE(file.write(sample()));
    CHECK(test::read_file(victim) == "precious");
    CHECK(std::filesystem::is_regular_file(std::filesystem::symlink_status(file.path())));
    CHECK(file.load()->size() == sample().size());
    const auto perms = std::filesystem::status(file.path()).permissions();
    CHECK(perms == (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
}

TEST_CASE("loading refuses anything but a regular file, without blocking, and says why")
{
    test::TempDir dir;
    SnapshotFile file{dir.file("db.json")};
    std::string expected;
    SUBCASE("a FIFO (opening it for reading would wait for a writer)") {
        REQUIRE(::mkfifo(file.path().c_str(), 0600) == 0);
        expected = "a FIFO, not a regular file";
    }
    SUBCASE("a directory") {
        std::filesystem::create_directory(file.path());
        expected = "a directory, not a regular file";
    }
    SUBCASE("a symbolic link, even to a valid snapshot") {
        SnapshotFile target{dir.file("real.json")};
        REQUIRE(target.write(sample()));
        std::filesystem::create_symlink(target.path(), file.path());
        expected = "a symbolic link, which is not followed";
    }
    std::string reason;
    const auto loaded = file.load(&reason);
    REQUIRE(!loaded);
    CHECK(loaded.error() == Errc::corrupt_snapshot);
    CHECK(reason == expected);
}

TEST_CASE("a snapshot keeps each metric's update time and sequence number")
{
    test::TempDir dir;
    SnapshotFile file{dir.file("db.json")};
    const std::vector<OwnedMetric> metrics{{"c", Kind::counter, 0, 3, 1700000000123, 42},
                                           {"g", Kind::gauge, 1.5, 0, 1, 0},
                                           {"old", Kind::gauge, 2, 0, 0, 0}};
    REQUIRE(file.write(metrics));
    CHECK(test::read_file(file.path()) ==
          R"([{"id":"c","type":"counter","delta":3,"updated_at":1700000000123,"seq":42},)"
          R"({"id":"g","type":"gauge","value":1.5,"updated_at":1},{"id":"old","type":"gauge","value":2}])");
    auto loaded = file.load();
    REQUIRE(loaded);
    CHECK(*loaded == metrics);

    SUBCASE("null stamps are absent") {
        auto parsed = storage::parse_snapshot(R"([{"id":"a","type":"gauge","value":1,"updated_at":null,"seq":null}])");
        REQUIRE(parsed);
        CHECK(*parsed == std::vector<OwnedMetric>{{"a", Kind::gauge, 1, 0, 0, 0}});
    }
    SUBCASE("a bad stamp is a corrupt snapshot") {
        for (const char* body : {R"([{"id":"a","type":"gauge","value":1,"updated_at":-1}])",
                                 R"([{"id":"a","type":"gauge","value":1,"updated_at":1.5}])",
                                 R"([{"id":"a","type":"gauge","value":1,"seq":"7"}])",
                                 R"([{"id":"a","type":"gauge","value":1,"seq":-7}])"}) {
            CAPTURE(body);
            CHECK(storage::parse_snapshot(body).error() == Errc::corrupt_snapshot);
        }
    }
}

TEST_CASE("the Go server's snapshot object loads")
{
    auto parsed = storage::parse_snapshot(
        R"({"gauges":{"Alloc":524288.5,"RandomValue":0.123456789,"GCCPUFraction":0},"counters":{"PollCount":42}})");
    REQUIRE(parsed);
    std::sort(parsed->begin(), parsed->end(), [](const OwnedMetric& a, const OwnedMetric& b) { return a.id < b.id; });
    CHECK(*parsed == std::vector<OwnedMetric>{{"Alloc", Kind::gauge, 524288.5, 0},
                                              {"GCCPUFraction", Kind::gauge, 0, 0},
                                              {"PollCount", Kind::counter, 0, 42},
                                              {"RandomValue", Kind::gauge, 0.123456789, 0}});

    SUBCASE("either kind may be missing or null, other keys are ignored") {
        auto only = storage::parse_snapshot(R"( {"gauges":null,"counters":{"c":-3},"version":[1,{"x":2}]} )");
        REQUIRE(only);
        CHECK(*only == std::vector<OwnedMetric>{{"c", Kind::counter, 0, -3}});
        auto empty = storage::parse_snapshot(R"({"gauges":{},"counters":{}})");
        REQUIRE(empty);
        CHECK(empty->empty());
    }
    SUBCASE("anything else is a corrupt snapshot") {
        for (const char* body : {R"({})", R"({"other":1})", R"({"gauges":{"a":"1"}})", R"({"gauges":[1]})",
                                 R"({"counters":{"c":1.5}})", R"({"counters":{"c":9223372036854775808}})",
                                 R"({"gauges":{"bad/name":1}})", R"({"gauges":{"":1}})", R"({"gauges":{"a":1}} x)",
                                 R"({"gauges":{"a":1})", R"({"gauges":{"a":1e999}})"}) {
            CAPTURE(body);
            CHECK(storage::parse_snapshot(body).error() == Errc::corrupt_snapshot);
        }
    }
    SUBCASE("a long gauge literal is read exactly") {
        auto exact = storage::parse_snapshot(R"({"gauges":{"g":0.95000000000000000000}})");
        REQUIRE(exact);
        CHECK(exact->front().value == 0.95);
    }
}
