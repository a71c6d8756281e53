#include "core/log.hpp"

#include "core/json.hpp"

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
    return env == nullptr ? Level::info : parse_level(env).value_or(Level::info);
}

std::atomic<Level> g_threshold{initial_threshold()};
std::atomic<Format> g_format{Format::text};

/// The level's name padded to five characters (text lines align).
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

std::string_view trimmed(std::string_view s) noexcept
{
    return s.substr(0, s.find(' '));
}

void append_timestamp(fmt::memory_buffer& line)
{
    using namespace std::chrono;
    const auto now = system_clock::now();
    const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    const std::time_t t = system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    fmt::format_to(std::back_inserter(line), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

void format_text(fmt::memory_buffer& line, Level l, std::string_view msg, std::span<const Field> fields)
{
    append_timestamp(line);
    fmt::format_to(std::back_inserter(line), " {} {}", level_name(l), msg);
    for (const Field& f : fields) {
        if (f.numeric)
            fmt::format_to(std::back_inserter(line), " {}={}", f.key, f.number);
        else
            fmt::format_to(std::back_inserter(line), " {}={}", f.key, f.text);
    }
    line.push_back('\n');
}

void format_json(fmt::memory_buffer& line, Level l, std::string_view msg, std::span<const Field> fields)
{
    line.append(std::string_view{"{\"ts\":\""});
    append_timestamp(line);
    fmt::format_to(std::back_inserter(line), "\",\"level\":\"{}\",\"msg\":", trimmed(level_name(l)));
    core::write_json_string(line, msg);
    for (const Field& f : fields) {
        line.push_back(',');
        core::write_json_string(line, f.key);
        line.push_back(':');
        if (f.numeric)
            fmt::format_to(std::back_inserter(line), "{}", f.number);
        else
            core::write_json_string(line, f.text);
    }
    line.append(std::string_view{"}\n"});
}

}  // namespace

std::optional<Level> parse_level(std::string_view s) noexcept
{
    for (Level l : {Level::debug, Level::info, Level::warn, Level::error})
        if (s == trimmed(level_name(l)))
            return l;
    return std::nullopt;
}

std::optional<Format> parse_format(std::string_view s) noexcept
{
    if (s == "text")
        return Format::text;
    if (s == "json")
        return Format::json;
    return std::nullopt;
}

bool configure(std::string_view format, std::string_view level) noexcept
{
    const auto f = format.empty() ? std::optional<Format>{log::format()} : parse_format(format);
    const auto l = level.empty() ? std::optional<Level>{threshold()} : parse_level(level);
    if (!f || !l)
        return false;
    set_format(*f);
    set_threshold(*l);
    return true;
}

Level threshold() noexcept { return g_threshold.load(std::memory_order_relaxed); }
void set_threshold(Level l) noexcept { g_threshold.store(l, std::memory_order_relaxed); }
Format format() noexcept { return g_format.load(std::memory_order_relaxed); }
void set_format(Format f) noexcept { g_format.store(f, std::memory_order_relaxed); }

void write(Level l, std::string_view msg, std::span<const Field> fields) noexcept
{
    fmt::memory_buffer line;
    try {
        if (format() == Format::json)
            format_json(line, l, msg, fields);
        else
            format_text(line, l, msg, fields);
    } catch (...) {
        return;  // out of memory for a log line: the line is lost, the caller goes on
    }
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
