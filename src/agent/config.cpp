#include "agent/config.hpp"

#include "core/config.hpp"

#include <charconv>

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
    if (auto exit = o.parse(argc, argv))
        return exit->code;
    return std::nullopt;
}

core::Result<ServerAddress> parse_server_address(std::string_view address)
{
    if (address.starts_with("http://"))
        address.remove_prefix(7);
    while (!address.empty() && address.back() == '/')
        address.remove_suffix(1);
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos)
        return core::Errc::bad_value;
    std::string_view host = address.substr(0, colon);
    const std::string_view port = address.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535)
        return core::Errc::bad_value;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (host.empty())
        return core::Errc::bad_value;
    return ServerAddress{std::string{host}, std::string{port}};
}

}  // namespace agent
