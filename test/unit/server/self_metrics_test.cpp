#include "core/exposition.hpp"
#include "server/self_metrics.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using core::Exposition;
using core::ExpositionFormat;
using server::HttpStats;

namespace {

std::string text(const fmt::memory_buffer& b) { return {b.data(), b.size()}; }

template <class F>
std::string exposed(ExpositionFormat format, F&& write)
{
    fmt::memory_buffer b;
    Exposition out{b, format};
    write(out);
    out.finish();
    return text(b);
}

}  // namespace

TEST_CASE("the scraper's Accept header picks the format, q-weights honoured")
{
    using core::negotiate_exposition;
    CHECK(negotiate_exposition("") == ExpositionFormat::prometheus);
    CHECK(negotiate_exposition("*/*") == ExpositionFormat::prometheus);
    CHECK(negotiate_exposition("application/openmetrics-text") == ExpositionFormat::openmetrics);
    // What Prometheus 2.x sends.
    CHECK(negotiate_exposition("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                               "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1") ==
          ExpositionFormat::openmetrics);
    CHECK(negotiate_exposition("text/plain;version=0.0.4;q=0.9, application/openmetrics-text;q=0.5") ==
          ExpositionFormat::prometheus);
    CHECK(negotiate_exposition("Application/OpenMetrics-Text ; q=1.0") == ExpositionFormat::openmetrics);
    CHECK(negotiate_exposition("application/openmetrics-text;q=0") == ExpositionFormat::prometheus);
    CHECK(negotiate_exposition("application/openmetrics-text;q=2") == ExpositionFormat::prometheus);
    CHECK(negotiate_exposition("application/openmetrics-text;q=abc") == ExpositionFormat::prometheus);
    CHECK(negotiate_exposition("text/plain, application/openmetrics-text") == ExpositionFormat::prometheus);
    CHECK(core::exposition_content_type(ExpositionFormat::prometheus) == "text/plain; version=0.0.4; charset=utf-8");
}

TEST_CASE("families get HELP and TYPE once; counters lose _total only in OpenMetrics' metadata")
{
    auto write = [](Exposition& out) {
        out.counter_family("x_requests_total", "Requests.");
        out.sample("x_requests_total", {{"code", "200"}}, std::int64_t{3});
        out.sample("x_requests_total", {{"code", "404"}}, std::int64_t{1});
        out.gauge_family("x_temperature", "Degrees.");
        out.sample("x_temperature", {}, 21.5);
    };
    CHECK(exposed(ExpositionFormat::prometheus, write) ==
          "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\n"
          "x_requests_total{code=\"200\"} 3\nx_requests_total{code=\"404\"} 1\n"
          "# HELP x_temperature Degrees.\n# TYPE x_temperature gauge\nx_temperature 21.5\n");
    CHECK(exposed(ExpositionFormat::openmetrics, write) ==
          "# HELP x_requests Requests.\n# TYPE x_requests counter\n"
          "x_requests_total{code=\"200\"} 3\nx_requests_total{code=\"404\"} 1\n"
          "# HELP x_temperature Degrees.\n# TYPE x_temperature gauge\nx_temperature 21.5\n# EOF\n");
}

TEST_CASE("label values are escaped and values keep full precision, NaN and infinities")
{
    const std::string out = exposed(ExpositionFormat::prometheus, [](Exposition& e) {
        e.sample("g", {{"id", "a\\b\"c\nd"}}, 0.1 + 0.2);
        e.sample("g", {{"id", "nan"}}, std::numeric_limits<double>::quiet_NaN());
        e.sample("g", {{"id", "up"}}, std::numeric_limits<double>::infinity());
        e.sample("g", {{"id", "down"}}, -std::numeric_limits<double>::infinity());
        e.sample("g", {}, 1e300);
    });
    CHECK(out == "g{id=\"a\\\\b\\\"c\\nd\"} 0.30000000000000004\ng{id=\"nan\"} NaN\ng{id=\"up\"} +Inf\n"
                 "g{id=\"down\"} -Inf\ng 1e+300\n");
}

TEST_CASE("/proc/self/stat parses with any command name, and refuses short or broken text")
{
    const std::string stat = "4242 (a) b) c) S 1 2 3 4 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 1000 "
                             "104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0";
    auto p = server::parse_proc_stat(stat, 100, 4096, 1.7e9);
    REQUIRE(p);
    CHECK(p->cpu_seconds == doctest::Approx(2.0));
    CHECK(p->start_time_seconds == doctest::Approx(1.7e9 + 10));
    CHECK(p->virtual_bytes == 104857600);
    CHECK(p->resident_bytes == 2560 * 4096);
    CHECK_FALSE(server::parse_proc_stat("4242 (a) S 1 2 3", 100, 4096, 0));
    CHECK_FALSE(server::parse_proc_stat("4242 a S", 100, 4096, 0));
    CHECK_FALSE(server::parse_proc_stat("4242 (a) S 1 2 3 4 -1 4194560 100 0 0 0 1x5 50 0 0 20 0 3 0 1000 1 1", 100,
                                        4096, 0));
}

TEST_CASE("this process's figures are plausible")
{
    const server::ProcessFigures p = server::read_process_figures();
    CHECK(p.resident_bytes > 0);
    CHECK(p.virtual_bytes >= p.resident_bytes);
    CHECK(p.open_fds >= 3);
    CHECK(p.max_fds != 0);
    CHECK(p.start_time_seconds > 1.7e9);
    CHECK(p.cpu_seconds >= 0);
}

TEST_CASE("request counts from many threads add up, by endpoint and status")
{
    HttpStats stats{{"/update/", "/value/", "other"}};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) {
                stats.request(0, 200, 10, 2, 50us);
                stats.request(1, i % 2 == 0 ? 404 : 200, 0, 1, 2ms);
                stats.request(99, 299, 0, 0, 0ns);  // unknown endpoint and code: "other"
            }
            stats.connection_opened();
        });
    for (auto& t : threads)
        t.join();
    stats.connection_closed();
    CHECK(stats.requests(0, 200) == 4000);
    CHECK(stats.requests(1, 404) == 2000);
    CHECK(stats.requests(1, 200) == 2000);
    CHECK(stats.requests(2, 299) == 4000);
    CHECK(stats.open_connections() == 3);
}

TEST_CASE("the HTTP families: cumulative buckets ending in +Inf, counts matching, sums in seconds")
{
    HttpStats stats{{"/update/"}};
    stats.request(0, 200, 100, 2, 50us);
    stats.request(0, 200, 100, 2, 3ms);
    stats.request(0, 400, 7, 20, 20s);
    stats.rejected(server::Rejection::body_too_large);
    stats.connection_refused();
    const std::string out = exposed(ExpositionFormat::prometheus, [&](Exposition& e) { stats.write(e); });
    CHECK(out.find("metrics_server_http_requests_total{endpoint=\"/update/\",code=\"200\"} 2\n") != std::string::npos);
    CHECK(out.find("metrics_server_http_requests_total{endpoint=\"/update/\",code=\"400\"} 1\n") != std::string::npos);
    CHECK(out.find("_bucket{endpoint=\"/update/\",le=\"0.0001\"} 1\n") != std::string::npos);
    CHECK(out.find("_bucket{endpoint=\"/update/\",le=\"0.001\"} 1\n") != std::string::npos);
    CHECK(out.find("_bucket{endpoint=\"/update/\",le=\"0.005\"} 2\n") != std::string::npos);
    CHECK(out.find("_bucket{endpoint=\"/update/\",le=\"5\"} 2\n") != std::string::npos);
    CHECK(out.find("_bucket{endpoint=\"/update/\",le=\"+Inf\"} 3\n") != std::string::npos);
    CHECK(out.find("_count{endpoint=\"/update/\"} 3\n") != std::string::npos);
    CHECK(out.find("_sum{endpoint=\"/update/\"} 20.00305\n") != std::string::npos);
    CHECK(out.find("metrics_server_http_request_bytes_total 207\n") != std::string::npos);
    CHECK(out.find("metrics_server_http_response_bytes_total 24\n") != std::string::npos);
    CHECK(out.find("metrics_server_http_rejections_total{limit=\"body\",code=\"413\"} 1\n") != std::string::npos);
    CHECK(out.find("metrics_server_connections_refused_total 1\n") != std::string::npos);
}
