#include "server/response.hpp"
#include "server/render.hpp"

#include <doctest/doctest.h>

#include <vector>

namespace {

std::string prometheus(const std::vector<core::OwnedMetric>& ms)
{
    fmt::memory_buffer out;
    server::write_prometheus(out, ms);
    return fmt::to_string(out);
}

}  // namespace

TEST_CASE("Prometheus exposition sanitises names and keeps the true id as a label")
{
    std::vector<core::OwnedMetric> ms{
        {"Alloc", core::Kind::gauge, 1.5, 0},
        {"PollCount", core::Kind::counter, 0, 7},
        {"my.metric", core::Kind::gauge, 2, 0},
        {"9lives", core::Kind::gauge, 3, 0},
    };
    CHECK(prometheus(ms) ==
          "# TYPE Alloc gauge\nAlloc 1.5\n"
          "# TYPE PollCount_total counter\nPollCount_total 7\n"
          "# TYPE _9lives gauge\n_9lives{id=\"9lives\"} 3\n"
          "# TYPE my_metric gauge\nmy_metric{id=\"my.metric\"} 2\n");
}

TEST_CASE("Prometheus families that collide after sanitising stay distinct series")
{
    std::vector<core::OwnedMetric> ms{
        {"a.b", core::Kind::gauge, 1, 0},
        {"a-b", core::Kind::gauge, 2, 0},
        {"x_total", core::Kind::gauge, 3, 0},
        {"x", core::Kind::counter, 0, 4},
    };
    CHECK(prometheus(ms) ==
          "# TYPE a_b gauge\na_b{id=\"a.b\"} 1\na_b{id=\"a-b\"} 2\n"
          "# TYPE x_total counter\nx_total 4\n"
          "# TYPE x_total_gauge gauge\nx_total_gauge{id=\"x_total\"} 3\n");
}

TEST_CASE("no client names make a gauge and a counter share a Prometheus family")
{
    // The names of issue 20: they used to yield two TYPE lines for x_total_counter.
    std::vector<core::OwnedMetric> ms{
        {"x", core::Kind::counter, 0, 5},
        {"x_total", core::Kind::gauge, 1, 0},
        {"x_total_counter", core::Kind::gauge, 2, 0},
    };
    CHECK(prometheus(ms) ==
          "# TYPE x_total counter\nx_total 5\n"
          "# TYPE x_total_counter gauge\nx_total_counter 2\n"
          "# TYPE x_total_gauge gauge\nx_total_gauge{id=\"x_total\"} 1\n");
}

TEST_CASE("the index page escapes names")
{
    std::vector<core::OwnedMetric> ms{{"<b>&\"'", core::Kind::gauge, 1, 0}};
    fmt::memory_buffer out;
    server::write_index_html(out, ms, 0);
    const std::string page = fmt::to_string(out);
    CHECK(page.starts_with("<!DOCTYPE html>"));
    CHECK(page.find("&lt;b&gt;&amp;&quot;&#39;") != std::string::npos);
    CHECK(page.find("<b>") == std::string::npos);
}

TEST_CASE("every error code maps to its documented status")
{
    using core::Errc;
    CHECK(server::status_for(Errc::not_found) == 404);
    CHECK(server::status_for(Errc::bad_value) == 400);
    CHECK(server::status_for(Errc::counter_overflow) == 400);
    CHECK(server::status_for(Errc::body_too_large) == 413);
    CHECK(server::status_for(Errc::batch_too_large) == 413);
    CHECK(server::status_for(Errc::header_too_large) == 431);
    CHECK(server::status_for(Errc::uri_too_long) == 414);
    CHECK(server::status_for(Errc::unsupported_media_type) == 415);
    CHECK(server::status_for(Errc::timeout) == 408);
    CHECK(server::status_for(Errc::storage_unavailable) == 500);
    CHECK(server::status_for(Errc::outcome_unknown) == 500);
    CHECK(server::status_for(Errc::storage_busy) == 503);
}

TEST_CASE("a response head carries length, type and keep-alive for HTTP/1.0")
{
    server::Response r;
    r.text("OK");
    fmt::memory_buffer head;
    r.write_head(head, 0, true);
    CHECK(fmt::to_string(head) ==
          "HTTP/1.0 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n"
          "Connection: keep-alive\r\n\r\n");
}
