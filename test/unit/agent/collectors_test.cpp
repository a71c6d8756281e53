#include "agent/collectors.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>

namespace {

const std::string fixtures = AGENT_FIXTURES;

double gauge(const agent::MetricTable& t, std::string_view name)
{
    const double* v = t.gauge(name);
    REQUIRE_MESSAGE(v != nullptr, name);
    return *v;
}

std::string fixture(const std::string& name)
{
    std::string text;
    REQUIRE(agent::read_proc_file((fixtures + "/proc/" + name).c_str(), text));
    return text;
}

constexpr const char* go_names[] = {
    "Alloc",      "BuckHashSys", "Frees",        "GCCPUFraction", "GCSys",     "HeapAlloc",   "HeapIdle",
    "HeapInuse",  "HeapObjects", "HeapReleased", "HeapSys",       "LastGC",    "Lookups",     "MCacheInuse",
    "MCacheSys",  "MSpanInuse",  "MSpanSys",     "Mallocs",       "NextGC",    "NumForcedGC", "NumGC",
    "OtherSys",   "PauseTotalNs", "StackInuse",  "StackSys",      "Sys",       "TotalAlloc"};

}  // namespace

TEST_CASE("process readings map to the Go MemStats names and the Process gauges")
{
    agent::ProcessReadings r;
    r.status = *agent::parse_status(fixture("self/status"));
    r.stat = *agent::parse_stat(fixture("self/stat"));
    r.malloc = {.arena = 1000000, .mmapped = 200000, .in_use = 700000, .free = 300000, .releasable = 120000};
    r.allocs = {.allocations = 500, .frees = 420, .bytes = 65536};
    r.open_fds = 7;
    agent::MetricTable t;
    agent::write_process_metrics(r, {.page_bytes = 4096, .ticks_per_second = 100}, t);

    CHECK(gauge(t, "Alloc") == 900000);
    CHECK(gauge(t, "HeapAlloc") == 900000);
    CHECK(gauge(t, "HeapInuse") == 900000);
    CHECK(gauge(t, "HeapIdle") == 300000);
    CHECK(gauge(t, "HeapSys") == 1200000);
    CHECK(gauge(t, "HeapSys") == gauge(t, "HeapIdle") + gauge(t, "HeapInuse"));  // as in Go
    CHECK(gauge(t, "HeapReleased") == 0);
    CHECK(gauge(t, "HeapObjects") == 80);
    CHECK(gauge(t, "Mallocs") == 500);
    CHECK(gauge(t, "Frees") == 420);
    CHECK(gauge(t, "TotalAlloc") == 65536);
    CHECK(gauge(t, "StackInuse") == 132 * 1024);
    CHECK(gauge(t, "StackSys") == 132 * 1024);
    CHECK(gauge(t, "OtherSys") == 9000 * 1024 - 1200000);
    CHECK(gauge(t, "Sys") == 1200000 + 132 * 1024 + (9000 * 1024 - 1200000));
    for (const char* name : {"GCSys", "GCCPUFraction", "LastGC", "NextGC", "NumGC", "NumForcedGC", "PauseTotalNs",
                             "BuckHashSys", "Lookups", "MCacheInuse", "MCacheSys", "MSpanInuse", "MSpanSys"})
        CHECK_MESSAGE(gauge(t, name) == 0, name);

    CHECK(gauge(t, "ProcessResidentBytes") == 6004 * 1024);
    CHECK(gauge(t, "ProcessVirtualBytes") == 112844800);
    CHECK(gauge(t, "ProcessCPUSeconds") == doctest::Approx(2.87));
    CHECK(gauge(t, "ProcessThreads") == 2);
    CHECK(gauge(t, "ProcessOpenFDs") == 7);
    CHECK(gauge(t, "ProcessMinorFaults") == 1234);
    CHECK(gauge(t, "ProcessMajorFaults") == 5);

    SUBCASE("every Go name is present") {
        for (const char* name : go_names)
            CHECK_MESSAGE(t.gauge(name) != nullptr, name);
    }
    SUBCASE("other memory is never negative") {
        r.status.vm_data = 1;
        agent::write_process_metrics(r, {}, t);
        CHECK(gauge(t, "OtherSys") == 0);
    }
}

TEST_CASE("the process collector reads this process and counts its C++ allocations")
{
    agent::ProcessCollector collector;
    agent::MetricTable t;
    REQUIRE(collector.collect(t));
    CHECK(gauge(t, "ProcessResidentBytes") > 0);
    CHECK(gauge(t, "ProcessThreads") >= 1);
    CHECK(gauge(t, "ProcessOpenFDs") >= 3);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)  // their allocators leave mallinfo2 at zero
    CHECK(gauge(t, "HeapSys") > 0);
#endif
    const double mallocs = gauge(t, "Mallocs");
    const double total = gauge(t, "TotalAlloc");

    auto kept = std::make_unique<std::string>(1000, 'x');
    REQUIRE(collector.collect(t));
    CHECK(gauge(t, "Mallocs") >= mallocs + 2);
    CHECK(gauge(t, "TotalAlloc") >= total + 1001);

    SUBCASE("an unreadable /proc leaves the table as it was") {
        agent::ProcessCollector broken{"/nonexistent"};
        CHECK(broken.collect(t).error() == core::Errc::io_error);
        CHECK(gauge(t, "Mallocs") >= mallocs + 2);
    }
}

TEST_CASE("the system collector reports memory and per-CPU utilisation between polls")
{
    agent::SystemCollector collector{fixtures + "/proc"};
    agent::MetricTable t;
    REQUIRE(collector.collect(t));
    CHECK(gauge(t, "TotalMemory") == 8039660.0 * 1024);
    CHECK(gauge(t, "FreeMemory") == 5123456.0 * 1024);  // MemAvailable
    // The first poll compares with boot: the average since boot.
    CHECK(gauge(t, "CPUutilization1") == doctest::Approx(100.0 * 7258 / (7258 + 500405)));
    CHECK(gauge(t, "CPUutilization2") == doctest::Approx(100.0 * 12322 / (12322 + 494953)));
    CHECK(t.gauge("CPUutilization0") == nullptr);
    CHECK(t.gauge("CPUutilization3") == nullptr);

    REQUIRE(collector.update(fixture("stat.next"), "MemTotal: 4 kB\nMemFree: 1 kB\n", t));
    CHECK(gauge(t, "CPUutilization1") == 50.0);
    CHECK(gauge(t, "CPUutilization2") == 100.0);
    CHECK(gauge(t, "TotalMemory") == 4096);
    CHECK(gauge(t, "FreeMemory") == 1024);  // MemFree when MemAvailable is missing

    SUBCASE("a malformed meminfo is reported, and the CPU gauges still update") {
        CHECK(collector.update(fixture("stat.next"), "garbage", t).error() == core::Errc::bad_value);
        CHECK(gauge(t, "CPUutilization1") == 0.0);
        CHECK(gauge(t, "TotalMemory") == 4096);
    }
    SUBCASE("a missing /proc is an I/O error") {
        agent::SystemCollector broken{"/nonexistent"};
        CHECK(broken.collect(t).error() == core::Errc::io_error);
    }
}

TEST_CASE("the random value is in [0, 1) and changes")
{
    agent::RandomCollector collector{42};
    agent::MetricTable t;
    collector.collect(t);
    const double first = gauge(t, "RandomValue");
    collector.collect(t);
    const double second = gauge(t, "RandomValue");
    CHECK(first >= 0.0);
    CHECK(first < 1.0);
    CHECK(second >= 0.0);
    CHECK(second < 1.0);
    CHECK(first != second);
}
