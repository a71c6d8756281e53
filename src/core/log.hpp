#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace core::log {

enum class Level { debug, info, warn, error };

/// How a line looks: `text` for people, `json` (one object per line) for log shippers.
enum class Format { text, json };

/// Messages below this level are dropped (default info; METRICS_LOG_LEVEL=debug|info|warn|error).
Level threshold() noexcept;
void set_threshold(Level l) noexcept;
Format format() noexcept;
void set_format(Format f) noexcept;

/// "debug", "info", "warn", "error"; anything else: nullopt.
std::optional<Level> parse_level(std::string_view s) noexcept;
/// "text", "json"; anything else: nullopt.
std::optional<Format> parse_format(std::string_view s) noexcept;
/// The values of the --log-level and --log-format options; empty keeps the current setting.
/// Returns false (and changes nothing) for a value that does not parse.
bool configure(std::string_view format, std::string_view level) noexcept;

/// A named value carried beside the message: a JSON member in `json` format, ` key=value`
/// after the message in `text` format.
struct Field {
    std::string_view key;
    std::string_view text;  ///< a string value
    std::int64_t number = 0;
    bool numeric = false;   ///< the value is `number`

    static Field string(std::string_view key, std::string_view value) noexcept { return {key, value, 0, false}; }
    static Field integer(std::string_view key, std::int64_t value) noexcept { return {key, {}, value, true}; }
};

/// One line to stderr. Text: `2026-11-25T22:15:19.123Z info  message key=value`; JSON:
/// `{"ts":"2026-11-25T22:15:19.123Z","level":"info","msg":"message","key":"value"}`.
/// Thread-safe: one write(2) per line keeps lines from different threads whole.
void write(Level l, std::string_view msg, std::span<const Field> fields = {}) noexcept;

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args)
{
    if (threshold() <= Level::debug)
        write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args)
{
    if (threshold() <= Level::info)
        write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args)
{
    if (threshold() <= Level::warn)
        write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args)
{
    write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace core::log
