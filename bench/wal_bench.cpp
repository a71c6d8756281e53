// The write-ahead log: encoding a record, appending it (write(2), what an update costs with
// -i N > 0), and durable appends with group commit (what an update waits for with -i 0:
// fdatasync on the disk of METRICS_BENCH_DIR, default the system temporary directory).
#include "storage/wal.hpp"
#include "support/allocations.hpp"
#include "support/check.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

using core::Metric;
using storage::wal::Log;

/// A fresh log directory, removed afterwards.
class LogDir {
public:
    LogDir()
    {
        const char* base = std::getenv("METRICS_BENCH_DIR");
        std::string pattern =
            (std::filesystem::path(base != nullptr && *base != '\0' ? base : std::filesystem::temp_directory_path().c_str()) /
             "metrics-wal-bench-XXXXXX")
                .string();
        if (::mkdtemp(pattern.data()) == nullptr)
            bench::fail("LogDir", "mkdtemp failed");
        path_ = pattern;
    }
    ~LogDir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    LogDir(const LogDir&) = delete;
    LogDir& operator=(const LogDir&) = delete;
    std::string log() const { return (path_ / "db.json.wal").string(); }

private:
    std::filesystem::path path_;
};

std::unique_ptr<Log> open_log(const std::string& dir, std::string_view benchmark)
{
    storage::wal::Recovery recovery;
    std::string error;
    auto log = Log::open(dir, [](const storage::wal::Record&) {}, recovery, error);
    bench::require(log != nullptr && log->start(recovery.next_seq).has_value(), benchmark, "open the log");
    return log;
}

std::vector<std::string> names(std::size_t n)
{
    std::vector<std::string> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        out.push_back("metric_" + std::to_string(i));
    return out;
}

void BM_WalEncode(benchmark::State& state)
{
    const auto ids = names(1024);
    std::string record;
    std::uint64_t seq = 1;
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        record.clear();
        const Metric m = Metric::counter(ids[seq % ids.size()], 1);
        storage::wal::encode(record, storage::wal::RecordType::update, seq, 1700000000000, {&m, 1});
        benchmark::DoNotOptimize(record.data());
        ++seq;
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WalEncode);

// One counter update's record written to the page cache: the log's cost per update with -i N.
// The log is compacted away (rotate, drop) every 2^20 records to bound the file.
void BM_WalAppend(benchmark::State& state)
{
    LogDir dir;
    auto log = open_log(dir.log(), "BM_WalAppend");
    const auto ids = names(1024);
    std::string record;
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        const std::uint64_t seq = log->next_seq();
        record.clear();
        const Metric m = Metric::counter(ids[seq % ids.size()], 1);
        storage::wal::encode(record, storage::wal::RecordType::update, seq, 1700000000000, {&m, 1});
        if (!log->append(record, seq + 1))
            bench::fail("BM_WalAppend", "append failed");
        if ((seq & ((1u << 20) - 1)) == 0) {
            state.PauseTiming();
            if (auto r = log->rotate(); r)
                log->drop_before(*r);
            state.ResumeTiming();
        }
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * record.size()));
}
BENCHMARK(BM_WalAppend);

// Durable appends with -i 0: each thread appends a record and waits until an fdatasync covers
// it; appends made while one sync runs share the next. syncs/item is the fsyncs per update.
struct Shared {
    LogDir dir;
    std::unique_ptr<Log> log;
    std::mutex mutex;
    std::condition_variable synced_cv;
    std::uint64_t synced = 0;
    std::unique_ptr<storage::wal::Committer> committer;
    std::uint64_t syncs_before = 0;
};
Shared* shared = nullptr;

void BM_WalAppendDurable(benchmark::State& state)
{
    if (state.thread_index() == 0) {
        shared = new Shared;
        shared->log = open_log(shared->dir.log(), "BM_WalAppendDurable");
        shared->synced = shared->log->synced_seq();
        shared->committer = std::make_unique<storage::wal::Committer>(
            *shared->log, shared->mutex, std::chrono::milliseconds{0}, [](core::Result<std::uint64_t> r) {
                if (!r)
                    bench::fail("BM_WalAppendDurable", "fdatasync failed");
                shared->synced = *r;
                shared->synced_cv.notify_all();
            });
        shared->syncs_before = shared->log->syncs();
    }
    const auto ids = names(64);
    std::string record;
    for (auto _ : state) {
        std::unique_lock lock{shared->mutex};
        const std::uint64_t seq = shared->log->next_seq();
        record.clear();
        const Metric m = Metric::counter(ids[seq % ids.size()], 1);
        storage::wal::encode(record, storage::wal::RecordType::update, seq, 1700000000000, {&m, 1});
        if (!shared->log->append(record, seq + 1))
            bench::fail("BM_WalAppendDurable", "append failed");
        shared->committer->wake();
        shared->synced_cv.wait(lock, [&] { return shared->synced > seq; });
    }
    state.SetItemsProcessed(state.iterations());
    if (state.thread_index() == 0) {
        // Past the loop every thread has finished its iterations (the loop ends at a barrier).
        shared->committer->stop();
        std::uint64_t records = 0;
        {
            std::lock_guard lock{shared->mutex};
            records = shared->log->next_seq() - 1;
            state.counters["syncs/item"] = benchmark::Counter(
                static_cast<double>(shared->log->syncs() - shared->syncs_before) / static_cast<double>(records));
        }
        delete shared;
        shared = nullptr;
    }
}
BENCHMARK(BM_WalAppendDurable)->Threads(1)->Threads(4)->Threads(16)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
