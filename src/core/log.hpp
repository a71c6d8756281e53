#pragma once

#include <fmt/format.h>

#include <string_view>

namespace core::log {

enum class Level { debug, info, warn, error };

/// Messages below this level are dropped (default info; METRICS_LOG_LEVEL=debug|info|warn|error).
Level threshold() noexcept;
void set_threshold(Level l) noexcept;

/// One line to stderr: `2026-11-25T22:15:19.123Z info  message`. Thread-safe (one write(2)).
void write(Level l, std::string_view msg) noexcept;

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
