#include "server/config.hpp"

#include "core/config.hpp"

namespace server {

ConnectionLimits Config::connection_limits() const
{
    ConnectionLimits l;
    l.http.max_header_bytes = static_cast<std::size_t>(max_header_bytes);
    l.http.max_request_line = static_cast<std::size_t>(max_uri_bytes) + 64;
    l.http.max_uri = static_cast<std::size_t>(max_uri_bytes);
    l.http.max_body = static_cast<std::size_t>(max_body_bytes);
    l.max_connections = static_cast<std::size_t>(max_connections);
    l.header_timeout = header_timeout;
    l.body_timeout = body_timeout;
    l.idle_timeout = idle_timeout;
    l.write_timeout = write_timeout;
    return l;
}

std::optional<int> load_config(int argc, const char* const* argv, Config& c)
{
    core::Options o{"metrics-server", "Collects gauges and counters over HTTP (Go metrics protocol).",
                    METRICS_VERSION};
    constexpr std::int64_t big = std::int64_t{1} << 40;
    o.add_string({"a", "address"}, "ADDRESS", "address", &c.address, "listen address host:port (http:// prefix accepted)");
    o.add_seconds({"i", "store-interval"}, "STORE_INTERVAL", "store_interval", &c.store_interval,
                  "seconds between snapshots; 0 = durable before each answer");
    o.add_string({"f", "file-storage-path"}, "FILE_STORAGE_PATH", "store_file", &c.store_file,
                 "snapshot file; empty disables snapshots");
    o.add_bool({"r", "restore"}, "RESTORE", "restore", &c.restore, "load the snapshot at start");
    o.add_string({"d", "database-dsn"}, "DATABASE_DSN", "database_dsn", &c.database_dsn,
                 "PostgreSQL DSN; when set it is the storage");
    o.add_int({"database-pool"}, "DATABASE_POOL", "database_pool", &c.database_pool,
              "PostgreSQL connections", 1, 256);
    o.add_int({"database-queue"}, "DATABASE_QUEUE", "database_queue", &c.database_queue,
              "requests waiting for a PostgreSQL connection (503 beyond)", 0, big);
    o.add_seconds({"database-timeout"}, "DATABASE_TIMEOUT", "database_timeout", &c.database_timeout,
                  "one PostgreSQL statement or connection attempt (also statement_timeout, lock_timeout)");
    o.add_seconds({"request-timeout"}, "REQUEST_TIMEOUT", "request_timeout", &c.request_timeout,
                  "storage work of one request: waiting for a connection and retries (503 beyond)");
    o.add_seconds({"metric-ttl"}, "METRIC_TTL", "metric_ttl", &c.metric_ttl,
                  "a metric not updated for this long disappears (\"30s\", \"5m\", \"1h\"); 0 = never");
    o.add_int({"max-metrics"}, "MAX_METRICS", "max_metrics", &c.max_metrics,
              "stored metrics, gauges and counters together (507 for a new one beyond); 0 = no cap (unsafe)", 0, big);
    o.add_string({"k", "key"}, "KEY", "key", &c.key, "HMAC-SHA256 key for HashSHA256");
    o.add_bool({"require-hash"}, "REQUIRE_HASH", "require_hash", &c.require_hash,
               "with a key: reject requests that carry no HashSHA256");
    o.add_string({"crypto-key"}, "CRYPTO_KEY", "crypto_key", &c.crypto_key, "private key file (sealed boxes)");
    o.add_string({"t", "trusted-subnet"}, "TRUSTED_SUBNET", "trusted_subnet", &c.trusted_subnet,
                 "CIDR allowed in X-Real-IP");
    o.add_string({"audit-file"}, "AUDIT_FILE", "audit_file", &c.audit_file, "audit log file");
    o.add_string({"audit-url"}, "AUDIT_URL", "audit_url", &c.audit_url, "audit receiver URL (http://host:port/path)");
    o.add_int({"audit-queue"}, "AUDIT_QUEUE", "audit_queue", &c.audit_queue,
              "audit events queued per sink (the newest is dropped beyond)", 1, big);
    o.add_seconds({"audit-timeout"}, "AUDIT_TIMEOUT", "audit_timeout", &c.audit_timeout,
                  "each connect, write and read of one audit POST");
    o.add_int({"threads"}, "THREADS", "threads", &c.threads, "I/O threads; 0 = one per CPU", 0, 1024);
    o.add_bool({"access-log"}, "ACCESS_LOG", "access_log", &c.access_log, "log one line per request");
    o.add_int({"max-header-bytes"}, "MAX_HEADER_BYTES", "max_header_bytes", &c.max_header_bytes,
              "request head limit (431 beyond)", 256, big);
    o.add_int({"max-uri-bytes"}, "MAX_URI_BYTES", "max_uri_bytes", &c.max_uri_bytes, "request target limit (414 beyond)",
              16, big);
    o.add_int({"max-body-bytes"}, "MAX_BODY_BYTES", "max_body_bytes", &c.max_body_bytes,
              "request body limit (413 beyond)", 0, big);
    o.add_int({"max-decoded-bytes"}, "MAX_DECODED_BYTES", "max_decoded_bytes", &c.max_decoded_bytes,
              "gunzipped body limit (413 beyond)", 0, big);
    o.add_int({"max-batch"}, "MAX_BATCH", "max_batch", &c.max_batch, "metrics in one /updates/ (413 beyond)", 1, big);
    o.add_int({"max-connections"}, "MAX_CONNECTIONS", "max_connections", &c.max_connections,
              "open connections (503 beyond)", 1, big);
    o.add_seconds({"header-timeout"}, "HEADER_TIMEOUT", "header_timeout", &c.header_timeout,
                  "first byte to end of headers");
    o.add_seconds({"body-timeout"}, "BODY_TIMEOUT", "body_timeout", &c.body_timeout, "end of headers to end of body");
    o.add_seconds({"idle-timeout"}, "IDLE_TIMEOUT", "idle_timeout", &c.idle_timeout, "keep-alive idle time");
    o.add_seconds({"write-timeout"}, "WRITE_TIMEOUT", "write_timeout", &c.write_timeout, "one response write");
    o.add_seconds({"shutdown-grace"}, "SHUTDOWN_GRACE", "shutdown_grace", &c.shutdown_grace,
                  "time in-flight requests get at shutdown");
    o.add_choice({"log-format"}, "LOG_FORMAT", "log_format", &c.log_format, {"text", "json"},
                 "log lines as text or as JSON objects (ts, level, msg and fields)");
    o.add_choice({"log-level"}, "LOG_LEVEL", "log_level", &c.log_level, {"", "debug", "info", "warn", "error"},
                 "lowest level logged (empty: METRICS_LOG_LEVEL, else info)");
    o.set_config_file_option({"c", "config"}, "CONFIG");
    if (auto exit = o.parse(argc, argv))
        return exit->code;
    return std::nullopt;
}

}  // namespace server
