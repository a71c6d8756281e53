#pragma once

#include "core/result.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace agent {

/// Everything `metrics-agent` can be told (API.md "Agent").
struct Config {
    std::string address = "localhost:8080";
    std::chrono::milliseconds poll_interval = std::chrono::seconds{2};
    std::chrono::milliseconds report_interval = std::chrono::seconds{10};
    std::int64_t rate_limit = 1;
    std::string key;
    std::string crypto_key;
    std::int64_t queue_size = 16;
    std::chrono::milliseconds request_timeout = std::chrono::seconds{5};
    std::chrono::milliseconds shutdown_timeout = std::chrono::seconds{5};
    std::string log_format = "text";  ///< text or json
    std::string log_level;            ///< empty: METRICS_LOG_LEVEL, else info
};

/// Fills `config` from flags, environment and the JSON config file (env > flag > file >
/// default). Returns the exit code when the process should stop now (help, version: 0; usage
/// errors: 2; unreadable config file: 1), after printing one line.
std::optional<int> load_config(int argc, const char* const* argv, Config& config);

/// The server to report to.
struct ServerAddress {
    std::string host;
    std::string port;
    friend bool operator==(const ServerAddress&, const ServerAddress&) = default;
};
/// `host:port`, `http://host:port/`, `[v6]:port`. No port, a bad port, or an empty host:
/// Errc::bad_value.
core::Result<ServerAddress> parse_server_address(std::string_view address);

}  // namespace agent
