#include "core/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <unistd.h>

namespace core::log {
namespace {

Level initial_threshold() noexcept
{
    const char* env = std::getenv("METRICS_LOG_LEVEL");
    if (env == nullptr)
        return Level::info;
    std::string_view v{env};
    if (v == "debug")
        return Level::debug;
    if (v == "warn")
        return Level::warn;
    if (v == "error")
        return Level::error;
    return Level::info;
}

std::atomic<Level> g_threshold{initial_threshold()};

constexpr std::string_view level_name(Level l) noexcept
{
    switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info ";
    case Level::warn: return "warn ";
    case Level::error: return "error";
    }
    return "?    ";
}

}  // namespace

Level threshold() noexcept { return g_threshold.load(std::memory_order_relaxed); }
void set_threshold(Level l) noexcept { g_threshold.store(l, std::memory_order_relaxed); }

void write(Level l, std::string_view msg) noexcept
{
    using namespace std::chrono;
    const auto now = system_clock::now();
    const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    const std::time_t t = system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    fmt::memory_buffer line;
    fmt::format_to(std::back_inserter(line), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} {}\n",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ms, level_name(l), msg);
    // One write(2) per line keeps lines from different threads whole.
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        const ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0)
            return;
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

}  // namespace core::log
