#include "storage/wal.hpp"

#include "failing_io.hpp"
#include "support.hpp"

#include <doctest/doctest.h>
#include <libdeflate.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using core::Errc;
using core::Kind;
using core::Metric;
using storage::wal::Committer;
using storage::wal::Log;
using storage::wal::ReadStatus;
using storage::wal::Record;
using storage::wal::RecordReader;
using storage::wal::RecordType;
using storage::wal::Recovery;

std::string record(RecordType type, std::uint64_t seq, std::int64_t time, std::vector<Metric> metrics)
{
    std::string out;
    storage::wal::encode(out, type, seq, time, metrics);
    return out;
}

std::string update(std::uint64_t seq, const Metric& m)
{
    return record(RecordType::update, seq, 1000 + static_cast<std::int64_t>(seq), {m});
}

/// Every record of `bytes` from `first_seq`, and how the reading ended. Keeps its own copy of
/// the bytes, which the records' ids view: callers may pass a temporary.
struct ReadAll {
    std::shared_ptr<const std::string> bytes;
    std::vector<Record> records;
    ReadStatus end = ReadStatus::end;
    std::size_t good_end = 0;
};
ReadAll read_all(std::string_view bytes, std::uint64_t first_seq)
{
    ReadAll out;
    out.bytes = std::make_shared<const std::string>(bytes);
    RecordReader reader{*out.bytes, first_seq};
    Record r;
    while ((out.end = reader.next(r)) == ReadStatus::record)
        out.records.push_back(r);
    out.good_end = reader.good_end();
    return out;
}

/// Opens a log in `dir`, collecting what it replays (ids copied).
struct Opened {
    std::unique_ptr<Log> log;
    Recovery recovery;
    std::vector<std::pair<std::uint64_t, std::string>> replayed;  ///< (seq, first id)
    std::string error;
};
Opened open_log(const std::string& dir, storage::wal::FileOps ops = {})
{
    Opened o;
    o.log = Log::open(
        dir, [&](const Record& r) { o.replayed.emplace_back(r.seq, std::string{r.metrics.front().id}); }, o.recovery,
        o.error, ops);
    return o;
}

std::string segment_file(const std::string& dir, std::uint64_t first)
{
    char name[32];
    std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(first));
    return dir + "/" + name;
}

/// The value, or 0 for an error (sequence numbers start at 1).
std::uint64_t value_of(const core::Result<std::uint64_t>& r)
{
    return r ? *r : 0;
}

}  // namespace

TEST_CASE("a record decodes to what was encoded")
{
    SUBCASE("a gauge, bit-exact") {
        const double v = -0.1234567890123456789e-300;
        const auto read = read_all(update(7, Metric::gauge("g.1", v)), 7);
        REQUIRE(read.records.size() == 1);
        CHECK(read.end == ReadStatus::end);
        CHECK(read.records[0].type == RecordType::update);
        CHECK(read.records[0].seq == 7);
        CHECK(read.records[0].time == 1007);
        CHECK(std::bit_cast<std::uint64_t>(read.records[0].metrics[0].value) == std::bit_cast<std::uint64_t>(v));
        CHECK(read.records[0].metrics[0] == Metric::gauge("g.1", v));
    }
    SUBCASE("a counter delta at the int64 limits") {
        const std::string bytes = update(1, Metric::counter("c", INT64_MIN)) + update(2, Metric::counter("c", INT64_MAX));
        const auto read = read_all(bytes, 1);
        REQUIRE(read.records.size() == 2);
        CHECK(read.records[0].metrics[0] == Metric::counter("c", INT64_MIN));
        CHECK(read.records[1].metrics[0] == Metric::counter("c", INT64_MAX));
    }
    SUBCASE("a batch takes one seq per element") {
        const std::string name(core::max_name_bytes, 'n');
        const std::string bytes = record(RecordType::batch, 3, 5, {Metric::gauge("a", 1), Metric::counter(name, 2), Metric::counter("a", 3)}) +
                                  update(6, Metric::gauge("b", 4));
        const auto read = read_all(bytes, 3);
        REQUIRE(read.records.size() == 2);
        CHECK(read.records[0].span() == 3);
        CHECK(read.records[0].metrics ==
              std::vector<Metric>{Metric::gauge("a", 1), Metric::counter(name, 2), Metric::counter("a", 3)});
        CHECK(read.records[1].seq == 6);
    }
    SUBCASE("a removal carries kind and name only") {
        const auto read = read_all(record(RecordType::remove, 9, 1, {Metric::counter("gone", 0)}), 9);
        REQUIRE(read.records.size() == 1);
        CHECK(read.records[0].type == RecordType::remove);
        CHECK(read.records[0].metrics[0] == Metric::counter("gone", 0));
    }
}

TEST_CASE("reading stops at a torn or corrupt tail and reports where the good part ends")
{
    const std::string first = update(1, Metric::counter("c", 1));
    const std::string second = update(2, Metric::counter("c", 2));
    const std::string both = first + second;

    SUBCASE("every truncation of the last record is torn, cut after the first") {
        for (std::size_t cut = first.size() + 1; cut < both.size(); ++cut) {
            CAPTURE(cut);
            const auto read = read_all(std::string_view{both}.substr(0, cut), 1);
            CHECK(read.records.size() == 1);
            CHECK(read.end == ReadStatus::torn);
            CHECK(read.good_end == first.size());
        }
    }
    SUBCASE("every flipped bit of the last record is detected") {
        for (std::size_t bit = 0; bit < 8 * second.size(); ++bit) {
            CAPTURE(bit);
            std::string bytes = both;
            bytes[first.size() + bit / 8] = static_cast<char>(bytes[first.size() + bit / 8] ^ (1 << (bit % 8)));
            const auto read = read_all(bytes, 1);
            CHECK(read.records.size() == 1);
            CHECK(read.end != ReadStatus::record);
            CHECK(read.end != ReadStatus::end);
            CHECK(read.good_end == first.size());
        }
    }
    SUBCASE("zeroes after the last record (a preallocated tail) are corrupt") {
        const auto read = read_all(both + std::string(64, '\0'), 1);
        CHECK(read.records.size() == 2);
        CHECK(read.end == ReadStatus::corrupt);
        CHECK(read.good_end == both.size());
    }
    SUBCASE("a length beyond the bound is corrupt, not an allocation") {
        std::string bytes = second;
        const std::uint32_t huge = 0xffffffffu;
        std::memcpy(bytes.data() + 4, &huge, 4);
        const auto read = read_all(first + bytes, 1);
        CHECK(read.records.size() == 1);
        CHECK(read.end == ReadStatus::corrupt);
    }
    SUBCASE("a batch count beyond its bytes is corrupt") {
        // A valid CRC over a payload that claims more elements than it holds.
        std::string bytes = record(RecordType::batch, 2, 0, {Metric::counter("c", 1)});
        const std::uint32_t count = 1000000;
        std::memcpy(bytes.data() + storage::wal::header_bytes, &count, 4);
        const std::uint32_t crc = libdeflate_crc32(0, bytes.data() + 4, bytes.size() - 4);
        std::memcpy(bytes.data(), &crc, 4);
        const auto read = read_all(first + bytes, 1);
        CHECK(read.records.size() == 1);
        CHECK(read.end == ReadStatus::corrupt);
    }
    SUBCASE("an invalid name inside a good CRC is corrupt") {
        std::string bytes = update(2, Metric::counter("c", 1));
        bytes[bytes.size() - 1] = '/';
        const std::uint32_t crc = libdeflate_crc32(0, bytes.data() + 4, bytes.size() - 4);
        std::memcpy(bytes.data(), &crc, 4);
        CHECK(read_all(first + bytes, 1).end == ReadStatus::corrupt);
    }
}

TEST_CASE("a record whose seq does not follow ends the reading")
{
    const std::string bytes = update(1, Metric::gauge("g", 1)) + update(3, Metric::gauge("g", 2));
    const auto read = read_all(bytes, 1);
    CHECK(read.records.size() == 1);
    CHECK(read.end == ReadStatus::gap);
    CHECK(read_all(update(1, Metric::gauge("g", 1)), 2).end == ReadStatus::gap);

    SUBCASE("after a batch the next seq is past all its elements") {
        const std::string b = record(RecordType::batch, 1, 0, {Metric::gauge("a", 1), Metric::gauge("b", 1)});
        CHECK(read_all(b + update(2, Metric::gauge("g", 1)), 1).end == ReadStatus::gap);
        CHECK(read_all(b + update(3, Metric::gauge("g", 1)), 1).records.size() == 2);
    }
}

TEST_CASE("an oversized record is refused at encoding")
{
    const std::string name(core::max_name_bytes, 'x');
    std::vector<Metric> batch(storage::wal::max_payload_bytes / (name.size() + 10) + 1, Metric::counter(name, 1));
    std::string out = "kept";
    CHECK_THROWS_AS(storage::wal::encode(out, RecordType::batch, 1, 0, batch), std::length_error);
    CHECK(out == "kept");
}

TEST_CASE("a log replays its records after reopening, and continues the last segment")
{
    test::TempDir tmp;
    const std::string dir = tmp.file("db.json.wal");
    {
        auto o = open_log(dir);
        REQUIRE(o.log);
        CHECK(o.recovery.next_seq == 1);
        REQUIRE(o.log->start(1));
        REQUIRE(o.log->append(update(1, Metric::counter("a", 1)) + update(2, Metric::counter("b", 1)), 3));
        REQUIRE(o.log->append(update(3, Metric::counter("c", 1)), 4));
    }
    auto o = open_log(dir);
    REQUIRE(o.log);
    CHECK(o.recovery.records == 3);
    CHECK(o.recovery.next_seq == 4);
    CHECK(o.recovery.cut.empty());
    CHECK(o.replayed == std::vector<std::pair<std::uint64_t, std::string>>{{1, "a"}, {2, "b"}, {3, "c"}});
    REQUIRE(o.log->start(4));
    REQUIRE(o.log->append(update(4, Metric::counter("d", 1)), 5));
    CHECK(o.log->segments() == std::vector<std::uint64_t>{1});

    SUBCASE("a state ahead of the log replaces the segments with one named by its seq") {
        o.log.reset();
        auto again = open_log(dir);
        REQUIRE(again.log->start(10));
        REQUIRE(again.log->append(update(10, Metric::counter("e", 1)), 11));
        again.log.reset();
        auto third = open_log(dir);
        CHECK(third.recovery.records == 1);
        CHECK(third.recovery.next_seq == 11);
        CHECK(third.replayed == std::vector<std::pair<std::uint64_t, std::string>>{{10, "e"}});
        CHECK(third.recovery.cut.empty());
    }
}

TEST_CASE("recovery cuts a torn tail and sets aside segments that no longer follow")
{
    test::TempDir tmp;
    const std::string dir = tmp.file("db.json.wal");
    {
        auto o = open_log(dir);
        REQUIRE(o.log->start(1));
        REQUIRE(o.log->append(update(1, Metric::counter("a", 1)), 2));
        REQUIRE(o.log->append(update(2, Metric::counter("b", 1)), 3));
        REQUIRE(value_of(o.log->rotate()) == 3);
        REQUIRE(o.log->append(update(3, Metric::counter("c", 1)), 4));
    }
    const std::string first = segment_file(dir, 1);
    const auto first_size = std::filesystem::file_size(first);
    std::filesystem::resize_file(first, first_size - 3);

    auto o = open_log(dir);
    REQUIRE(o.log);
    CHECK(o.recovery.records == 1);
    CHECK(o.recovery.next_seq == 2);
    CHECK(o.recovery.cut.find("torn record") != std::string::npos);
    CHECK(std::filesystem::file_size(first) == update(1, Metric::counter("a", 1)).size());
    CHECK(std::filesystem::exists(segment_file(dir, 3) + ".broken"));
    CHECK(!std::filesystem::exists(segment_file(dir, 3)));
    REQUIRE(o.log->start(2));
    REQUIRE(o.log->append(update(2, Metric::counter("b2", 1)), 3));
    o.log.reset();

    auto again = open_log(dir);
    CHECK(again.recovery.cut.empty());
    CHECK(again.replayed == std::vector<std::pair<std::uint64_t, std::string>>{{1, "a"}, {2, "b2"}});
}

TEST_CASE("rotation starts a segment at the next seq and drop_before deletes the older ones")
{
    test::TempDir tmp;
    const std::string dir = tmp.file("w");
    auto o = open_log(dir);
    REQUIRE(o.log->start(1));
    CHECK(value_of(o.log->rotate()) == 1);  // empty: stays
    REQUIRE(o.log->append(update(1, Metric::gauge("a", 1)), 2));
    CHECK(value_of(o.log->rotate()) == 2);
    REQUIRE(o.log->append(update(2, Metric::gauge("a", 2)), 3));
    CHECK(value_of(o.log->rotate()) == 3);
    CHECK(o.log->segments() == std::vector<std::uint64_t>{1, 2, 3});
    const auto before = o.log->bytes();
    o.log->drop_before(3);
    CHECK(o.log->segments() == std::vector<std::uint64_t>{3});
    CHECK(o.log->bytes() == before - 2 * update(1, Metric::gauge("a", 1)).size());
    CHECK(!std::filesystem::exists(segment_file(dir, 1)));
    CHECK(!std::filesystem::exists(segment_file(dir, 2)));
    REQUIRE(o.log->append(update(3, Metric::gauge("a", 3)), 4));
    o.log.reset();
    auto again = open_log(dir);
    CHECK(again.recovery.next_seq == 4);
    CHECK(again.replayed == std::vector<std::pair<std::uint64_t, std::string>>{{3, "a"}});
}

TEST_CASE("a failed write leaves no partial record and the log keeps working")
{
    test::TempDir tmp;
    const std::string dir = tmp.file("w");
    auto o = open_log(dir, test::failing_file_ops);
    REQUIRE(o.log->start(1));
    REQUIRE(o.log->append(update(1, Metric::counter("a", 1)), 2));
    test::failing_writes = 1;
    test::partial_bytes = 10;
    CHECK(o.log->append(update(2, Metric::counter("a", 2)), 3).error() == Errc::io_error);
    CHECK(!o.log->healthy());
    CHECK(o.log->next_seq() == 2);
    CHECK(std::filesystem::file_size(segment_file(dir, 1)) == update(1, Metric::counter("a", 1)).size());

    REQUIRE(o.log->append(update(2, Metric::counter("b", 2)), 3));
    const Log::SyncPoint point = o.log->sync_point();
    CHECK(value_of(o.log->finish_sync(point, o.log->sync_data(point), true)) == 3);
    CHECK(o.log->healthy());
    o.log.reset();
    auto again = open_log(dir);
    CHECK(again.recovery.cut.empty());
    CHECK(again.replayed == std::vector<std::pair<std::uint64_t, std::string>>{{1, "a"}, {2, "b"}});
}

TEST_CASE("a failed sync cuts what it did not cover when asked to roll back")
{
    test::TempDir tmp;
    const std::string dir = tmp.file("w");
    auto o = open_log(dir, test::failing_file_ops);
    REQUIRE(o.log->start(1));
    REQUIRE(o.log->append(update(1, Metric::counter("a", 1)), 2));
    auto point = o.log->sync_point();
    REQUIRE(o.log->finish_sync(point, o.log->sync_data(point), true));
    REQUIRE(o.log->append(update(2, Metric::counter("a", 2)), 3));
    REQUIRE(o.log->append(update(3, Metric::counter("a", 3)), 4));

    SUBCASE("with rollback (-i 0): back to the synced end and seq") {
        test::failing_syncs = 1;
        point = o.log->sync_point();
        CHECK(o.log->finish_sync(point, o.log->sync_data(point), true).error() == Errc::io_error);
        CHECK(o.log->next_seq() == 2);
        CHECK(o.log->synced_seq() == 2);
        CHECK(!o.log->unsynced());
        CHECK(std::filesystem::file_size(segment_file(dir, 1)) == update(1, Metric::counter("a", 1)).size());
    }
    SUBCASE("without (-i N): kept for the next sync") {
        test::failing_syncs = 1;
        point = o.log->sync_point();
        CHECK(o.log->finish_sync(point, o.log->sync_data(point), false).error() == Errc::io_error);
        CHECK(o.log->next_seq() == 4);
        CHECK(o.log->unsynced());
        CHECK(!o.log->healthy());
        point = o.log->sync_point();
        CHECK(value_of(o.log->finish_sync(point, o.log->sync_data(point), false)) == 4);
        CHECK(o.log->healthy());
    }
}

TEST_CASE("writers that append while a sync runs share the next one (group commit)")
{
    test::TempDir tmp;
    auto o = open_log(tmp.file("w"), {&core::file::write_all, &test::gated_fdatasync});
    REQUIRE(o.log->start(1));
    test::sync_gate.close();  // the first writer's sync waits there; the others append behind it
    std::mutex mutex;  // the owner's sequencer
    std::condition_variable synced_cv;
    std::uint64_t synced = 1;
    std::vector<std::uint64_t> reported;
    Committer committer{*o.log, mutex, 0ms, [&](core::Result<std::uint64_t> r) {
                            synced = r ? *r : 0;
                            reported.push_back(synced);
                            synced_cv.notify_all();
                        }};
    const auto append_and_wait = [&](const std::string& id) {
        std::unique_lock lock{mutex};
        const std::uint64_t seq = o.log->next_seq();
        REQUIRE(o.log->append(update(seq, Metric::counter(id, 1)), seq + 1));
        committer.wake();
        synced_cv.wait(lock, [&] { return synced > seq; });
    };

    constexpr int writers = 8;
    std::vector<std::thread> threads;
    threads.emplace_back(append_and_wait, "first");
    test::sync_gate.wait_until_entered();
    for (int i = 1; i < writers; ++i)
        threads.emplace_back(append_and_wait, "w" + std::to_string(i));
    for (;;) {  // every writer has appended behind the blocked sync
        std::lock_guard lock{mutex};
        if (o.log->next_seq() == writers + 1)
            break;
    }
    test::sync_gate.open();
    for (auto& t : threads)
        t.join();
    CHECK(o.log->syncs() == 2);
    CHECK(reported == std::vector<std::uint64_t>{2, writers + 1});
}

TEST_CASE("a committer with an interval syncs on its own and rotates on request")
{
    test::TempDir tmp;
    auto o = open_log(tmp.file("w"));
    REQUIRE(o.log->start(1));
    std::mutex mutex;
    std::uint64_t synced = 1;
    Committer committer{*o.log, mutex, 3600s, [&](core::Result<std::uint64_t> r) {
                            if (r)
                                synced = *r;
                        }};
    {
        std::lock_guard lock{mutex};
        REQUIRE(o.log->append(update(1, Metric::gauge("a", 1)), 2));
        REQUIRE(o.log->append(update(2, Metric::gauge("a", 2)), 3));
    }
    // A rotation syncs first, whatever the interval.
    CHECK(value_of(committer.rotate()) == 3);
    std::lock_guard lock{mutex};
    CHECK(synced == 3);
    CHECK(o.log->segments() == std::vector<std::uint64_t>{1, 3});
}

TEST_CASE("a committer with interval 0 reports a failed sync after cutting its records")
{
    test::TempDir tmp;
    auto o = open_log(tmp.file("w"), test::failing_file_ops);
    REQUIRE(o.log->start(1));
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<core::Result<std::uint64_t>> reported;
    Committer committer{*o.log, mutex, 0ms, [&](core::Result<std::uint64_t> r) {
                            reported.push_back(r);
                            cv.notify_all();
                        }};
    test::failing_syncs = 1;
    std::unique_lock lock{mutex};
    REQUIRE(o.log->append(update(1, Metric::gauge("a", 1)), 2));
    committer.wake();
    cv.wait(lock, [&] { return !reported.empty(); });
    CHECK(reported[0].error() == Errc::io_error);
    CHECK(o.log->next_seq() == 1);
    REQUIRE(o.log->append(update(1, Metric::gauge("b", 1)), 2));
    committer.wake();
    cv.wait(lock, [&] { return reported.size() == 2; });
    CHECK(value_of(reported[1]) == 2);
}
