#pragma once

#include "server/listener.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace server {

/// Everything `metrics-server` can be told (API.md "Configuration", plus limits).
struct Config {
    std::string address = "localhost:8080";
    std::chrono::milliseconds store_interval = std::chrono::seconds{300};
    std::string store_file = "/tmp/metrics-db.json";
    bool restore = true;
    std::string database_dsn;
    std::int64_t database_pool = 4;
    std::int64_t database_queue = 256;  ///< requests waiting for a database connection
    std::chrono::milliseconds database_timeout = std::chrono::seconds{5};  ///< one statement or connect
    std::chrono::milliseconds request_timeout = std::chrono::seconds{10};  ///< storage part of a request
    std::chrono::milliseconds metric_ttl{0};  ///< a metric not updated for this long is gone; 0 = never
    std::int64_t max_metrics = 1'000'000;     ///< stored metrics, gauges and counters together; 0 = no cap (unsafe)
    std::string key;
    bool require_hash = false;
    std::string crypto_key;
    std::string trusted_subnet;
    std::string audit_file;
    std::string audit_url;
    std::int64_t audit_queue = 10000;  ///< events each audit sink's queue holds
    std::chrono::milliseconds audit_timeout = std::chrono::seconds{5};  ///< one POST to the audit URL

    std::string log_format = "text";  ///< text or json
    std::string log_level;            ///< empty: METRICS_LOG_LEVEL, else info
    std::int64_t threads = 0;  ///< 0: one per hardware thread
    bool access_log = true;
    std::int64_t max_header_bytes = 16 * 1024;
    std::int64_t max_uri_bytes = 4096;
    std::int64_t max_body_bytes = 8 << 20;
    std::int64_t max_decoded_bytes = 32 << 20;
    std::int64_t max_batch = 10000;
    std::int64_t max_connections = 10000;
    std::chrono::milliseconds header_timeout = std::chrono::seconds{10};
    std::chrono::milliseconds body_timeout = std::chrono::seconds{30};
    std::chrono::milliseconds idle_timeout = std::chrono::seconds{60};
    std::chrono::milliseconds write_timeout = std::chrono::seconds{30};
    std::chrono::milliseconds shutdown_grace = std::chrono::seconds{10};

    ConnectionLimits connection_limits() const;
};

/// Fills `config` from flags, environment and the JSON config file (env > flag > file >
/// default). Returns the exit code when the process should stop now (help, version: 0; usage
/// errors: 2; unreadable config file: 1), after printing one line.
std::optional<int> load_config(int argc, const char* const* argv, Config& config);

}  // namespace server
