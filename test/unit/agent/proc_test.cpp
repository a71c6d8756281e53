#include "agent/proc.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

std::string fixture(const char* name)
{
    std::string text;
    REQUIRE(agent::read_proc_file((std::string{AGENT_FIXTURES} + "/proc/" + name).c_str(), text));
    return text;
}

}  // namespace

TEST_CASE("meminfo gives total, free and available memory in bytes")
{
    auto m = agent::parse_meminfo(fixture("meminfo"));
    REQUIRE(m);
    CHECK(m->total == 8039660ull * 1024);
    CHECK(m->free == 412340ull * 1024);
    CHECK(m->available == 5123456ull * 1024);

    SUBCASE("MemAvailable is optional") {
        auto old = agent::parse_meminfo("MemTotal: 100 kB\nMemFree: 50 kB\n");
        REQUIRE(old);
        CHECK(*old == agent::MemInfo{102400, 51200, 0});
    }
    SUBCASE("a meminfo without MemTotal or MemFree is malformed") {
        CHECK(agent::parse_meminfo("MemFree: 50 kB\n").error() == core::Errc::bad_value);
        CHECK(agent::parse_meminfo("MemTotal: 50 kB\nMemFree: x kB\n").error() == core::Errc::bad_value);
        CHECK(agent::parse_meminfo("").error() == core::Errc::bad_value);
    }
    SUBCASE("a value that would overflow in bytes is skipped") {
        CHECK(agent::parse_meminfo("MemTotal: 18446744073709551615 kB\nMemFree: 1 kB\n").error() ==
              core::Errc::bad_value);
    }
}

TEST_CASE("stat gives busy and idle ticks per CPU, without the aggregate line")
{
    std::vector<agent::CpuTimes> cpus;
    agent::parse_stat_cpus(fixture("stat"), cpus);
    REQUIRE(cpus.size() == 2);
    CHECK(cpus[0] == agent::CpuTimes{3882 + 3237 + 139, 500368 + 37});
    CHECK(cpus[1] == agent::CpuTimes{6641 + 5459 + 222, 493929 + 1024});

    SUBCASE("CPUs are placed by their number, offline ones stay zero") {
        agent::parse_stat_cpus("cpu 1 1 1 1\ncpu2 1 2 3 4 5 6 7 8 9 10\n", cpus);
        REQUIRE(cpus.size() == 3);
        CHECK(cpus[0] == agent::CpuTimes{});
        CHECK(cpus[2] == agent::CpuTimes{1 + 2 + 3 + 6 + 7 + 8, 4 + 5});
    }
    SUBCASE("malformed lines and CPUs beyond the limit are ignored") {
        agent::parse_stat_cpus("cpu0 1 2 x 4\ncpu1 1 2 3\ncpux 1 2 3 4\ncpu9 1 2 3 4\ncpu3 1 2 3 4\n", cpus, 8);
        REQUIRE(cpus.size() == 4);
        CHECK(cpus[0] == agent::CpuTimes{});
        CHECK(cpus[3] == agent::CpuTimes{1 + 2 + 3, 4});
    }
}

TEST_CASE("CPU utilisation is the busy share of the ticks between two readings")
{
    std::vector<agent::CpuTimes> before;
    std::vector<agent::CpuTimes> after;
    agent::parse_stat_cpus(fixture("stat"), before);
    agent::parse_stat_cpus(fixture("stat.next"), after);
    REQUIRE(after.size() == 2);
    CHECK(agent::cpu_utilization(before[0], after[0]) == 50.0);
    CHECK(agent::cpu_utilization(before[1], after[1]) == 100.0);
    CHECK(agent::cpu_utilization(after[1], after[1]) == 0.0);
    CHECK(agent::cpu_utilization(after[0], before[0]) == 0.0);  // counters went backwards
}

TEST_CASE("status gives the process's memory sizes in bytes")
{
    auto s = agent::parse_status(fixture("self/status"));
    REQUIRE(s);
    CHECK(*s == agent::ProcStatus{110200 * 1024, 6004 * 1024, 9000 * 1024, 132 * 1024, 812 * 1024, 4400 * 1024});
    CHECK(agent::parse_status("Name:\tkthreadd\nThreads:\t1\n").error() == core::Errc::bad_value);
}

TEST_CASE("stat gives faults, CPU ticks, threads and sizes even when the command has parentheses")
{
    auto s = agent::parse_stat(fixture("self/stat"));
    REQUIRE(s);
    CHECK(s->minor_faults == 1234);
    CHECK(s->major_faults == 5);
    CHECK(s->user_ticks == 250);
    CHECK(s->system_ticks == 37);
    CHECK(s->threads == 2);
    CHECK(s->virtual_bytes == 112844800);
    CHECK(s->resident_pages == 1501);

    SUBCASE("a truncated or non-numeric stat is malformed") {
        CHECK(agent::parse_stat("4242 (x) S 1 2 3").error() == core::Errc::bad_value);
        CHECK(agent::parse_stat("no parenthesis").error() == core::Errc::bad_value);
        CHECK(agent::parse_stat("1 (x) S 1 1 1 0 -1 0 x 0 5 0 250 37 0 0 20 0 2 0 1 2 3\n").error() ==
              core::Errc::bad_value);
        CHECK(agent::parse_stat("1 (x) S 1 1 1 0 -1 0 1\n0 5 0 250 37 0 0 20 0 2 0 1 2 3\n").error() ==
              core::Errc::bad_value);
    }
}

TEST_CASE("reading a missing file is an I/O error")
{
    std::string text = "old";
    CHECK(agent::read_proc_file("/nonexistent/proc/file", text).error() == core::Errc::io_error);
    CHECK(agent::count_directory_entries("/nonexistent/dir").error() == core::Errc::io_error);
}

TEST_CASE("the real /proc files of this process parse")
{
    std::string text;
    REQUIRE(agent::read_proc_file("/proc/self/status", text));
    CHECK(agent::parse_status(text));
    REQUIRE(agent::read_proc_file("/proc/self/stat", text));
    CHECK(agent::parse_stat(text));
    REQUIRE(agent::read_proc_file("/proc/meminfo", text));
    CHECK(agent::parse_meminfo(text));
    REQUIRE(agent::read_proc_file("/proc/stat", text));
    std::vector<agent::CpuTimes> cpus;
    agent::parse_stat_cpus(text, cpus);
    CHECK(!cpus.empty());
}
