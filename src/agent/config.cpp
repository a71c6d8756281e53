#include "agent/config.hpp"

#include "core/address.hpp"
#include "core/config.hpp"

namespace agent {

std::optional<int> load_config(int argc, const char* const* argv, Config& c)
{
    core::Options o{"metrics-agent", "Polls process and system metrics and reports them to a metrics server.",
                    METRICS_VERSION};
    o.add_string({"a", "address"}, "ADDRESS", "address", &c.address, "server address host:port (http:// prefix accepted)");
    o.add_seconds({"p", "poll-interval"}, "POLL_INTERVAL", "poll_interval", &c.poll_interval, "seconds between polls");
    o.add_seconds({"r", "report-interval"}, "REPORT_INTERVAL", "report_interval", &c.report_interval,
                  "seconds between reports");
    o.add_int({"l", "rate-limit"}, "RATE_LIMIT", "rate_limit", &c.rate_limit,
              "concurrent outgoing requests (sender coroutines)", 1, 64);
    o.add_string({"k", "key"}, "KEY", "key", &c.key, "HMAC-SHA256 key: sign reports with HashSHA256");
    o.add_string({"crypto-key"}, "CRYPTO_KEY", "crypto_key", &c.crypto_key, "server's public key file (sealed boxes)");
    o.add_int({"queue", "queue-size"}, "QUEUE_SIZE", "queue_size", &c.queue_size,
              "reports kept while the server is slow or down; beyond it the oldest is dropped", 1, 4096);
    o.add_seconds({"request-timeout"}, "REQUEST_TIMEOUT", "request_timeout", &c.request_timeout,
                  "one request: connect, send, answer");
    o.add_seconds({"shutdown-timeout"}, "SHUTDOWN_TIMEOUT", "shutdown_timeout", &c.shutdown_timeout,
                  "time pending reports get at shutdown");
    o.set_config_file_option({"c", "config"}, "CONFIG");
    o.add_choice({"log-format"}, "LOG_FORMAT", "log_format", &c.log_format, {"text", "json"},
                 "log lines as text or as JSON objects (ts, level, msg and fields)");
    o.add_choice({"log-level"}, "LOG_LEVEL", "log_level", &c.log_level, {"", "debug", "info", "warn", "error"},
                 "lowest level logged (empty: METRICS_LOG_LEVEL, else info)");
    if (auto exit = o.parse(argc, argv))
        return exit->code;
    return std::nullopt;
}

core::Result<ServerAddress> parse_server_address(std::string_view address)
{
    auto parts = core::split_host_port(address);
    // The agent needs somewhere to send to: no empty host, no port 0.
    if (!parts || parts->host.empty() || parts->number == 0)
        return core::Errc::bad_value;
    return ServerAddress{std::string{parts->host}, std::string{parts->port}};
}

}  // namespace agent
