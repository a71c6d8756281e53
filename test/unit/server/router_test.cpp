#include "server/config.hpp"
#include "server/endpoints.hpp"
#include "server/offline.hpp"
#include "http/parser.hpp"
#include "server/pipeline.hpp"
#include "storage/memory.hpp"
#include "support/memory.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

namespace {

using server::OfflineConnection;

std::string post(std::string_view path, std::string_view body = {}, std::string_view type = "application/json")
{
    std::string r = "POST " + std::string{path} + " HTTP/1.1\r\nHost: t\r\n";
    if (!type.empty())
        r += "Content-Type: " + std::string{type} + "\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string{body};
    return r;
}

std::string get(std::string_view path) { return "GET " + std::string{path} + " HTTP/1.1\r\nHost: t\r\n\r\n"; }

std::string del(std::string_view path, std::string_view body = {}, std::string_view type = {})
{
    std::string r = post(path, body, type);
    r.replace(0, 4, "DELETE");
    return r;
}

struct Fixture {
    storage::MemoryStorage store;
    server::Config config = [] {
        server::Config c;
        c.access_log = false;
        return c;
    }();
    std::unique_ptr<server::Pipeline> pipeline = server::make_pipeline(config, store);
    OfflineConnection conn{*pipeline};
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "a URL gauge update is readable as text in shortest form")
{
    CHECK(conn.handle(post("/update/gauge/g/123456.70", {}, {})).status == 200);
    auto answer = conn.handle(get("/value/gauge/g"));
    CHECK(answer.status == 200);
    CHECK(answer.body == "123456.7");
    CHECK(answer.head.find("Content-Type: text/plain") != std::string_view::npos);
}

TEST_CASE_FIXTURE(Fixture, "URL updates map errors to the Go server's statuses")
{
    CHECK(conn.handle(post("/update/gauge/", {}, {})).status == 404);
    CHECK(conn.handle(post("/update/gauge/x", {}, {})).status == 404);
    CHECK(conn.handle(post("/update/gauge/x/1/", {}, {})).status == 404);
    CHECK(conn.handle(post("/update/gauge/x/1/2", {}, {})).status == 404);
    CHECK(conn.handle(post("/update/bogus/x/1", {}, {})).status == 400);
    CHECK(conn.handle(post("/update/gauge/x/abc", {}, {})).status == 400);
    CHECK(conn.handle(post("/update/counter/x/1.5", {}, {})).status == 400);
    CHECK(conn.handle(get("/update/gauge/x/1")).status == 405);
    CHECK(conn.handle(get("/value/gauge/x")).status == 404);
    REQUIRE(conn.handle(post("/update/gauge/x/1", {}, {})).status == 200);
    CHECK(conn.handle(get("/value/gauge/x/")).status == 404);
    CHECK(conn.handle(get("/value/gauge/x/1")).status == 404);
    CHECK(conn.handle(get("/value/nope/x")).status == 404);
    CHECK(conn.handle(get("/elsewhere")).status == 404);
}

TEST_CASE_FIXTURE(Fixture, "a JSON counter update answers the new total")
{
    REQUIRE(conn.handle(post("/update/", R"({"id":"c","type":"counter","delta":2})")).status == 200);
    auto answer = conn.handle(post("/update/", R"({"id":"c","type":"counter","delta":3})"));
    CHECK(answer.status == 200);
    CHECK(answer.body == R"({"id":"c","type":"counter","delta":5})");
}

TEST_CASE_FIXTURE(Fixture, "JSON endpoints refuse other content types with 415")
{
    CHECK(conn.handle(post("/update/", R"({"id":"c","type":"counter","delta":2})", "text/plain")).status == 415);
    CHECK(conn.handle(post("/value/", R"({"id":"c","type":"counter"})", {})).status == 415);
    CHECK(conn.handle(post("/updates/", "[]", "application/json; charset=utf-8")).status == 400);
    // Types of the bare type's length (16 bytes) are compared whole, without looking for ';'.
    CHECK(conn.handle(post("/value/", R"({"id":"c","type":"counter"})", "application/jsoN")).status == 404);
    CHECK(conn.handle(post("/value/", R"({"id":"c","type":"counter"})", "application/jso;")).status == 415);
    CHECK(conn.handle(post("/value/", R"({"id":"c","type":"counter"})", "application/xml;a")).status == 415);
    CHECK(conn.handle(post("/value/", R"({"id":"c","type":"counter"})", "APPLICATION/JSON ;q")).status == 404);
}

TEST_CASE_FIXTURE(Fixture, "a batch with a bad element changes nothing")
{
    auto answer = conn.handle(post("/updates/", R"([{"id":"a","type":"gauge","value":1},{"id":"b","type":"gauge"}])"));
    CHECK(answer.status == 400);
    CHECK(conn.handle(get("/value/gauge/a")).status == 404);
}

TEST_CASE_FIXTURE(Fixture, "POST /value/ answers the stored metric as JSON")
{
    REQUIRE(conn.handle(post("/update/gauge/v/0.1", {}, {})).status == 200);
    auto answer = conn.handle(post("/value/", R"({"id":"v","type":"gauge"})"));
    CHECK(answer.status == 200);
    CHECK(answer.body == R"({"id":"v","type":"gauge","value":0.1})");
    CHECK(conn.handle(post("/value/", R"({"id":"w","type":"gauge"})")).status == 404);
}

TEST_CASE("a keyed server signs responses and refuses bad hashes")
{
    storage::MemoryStorage store;
    server::Config config;
    config.access_log = false;
    config.key = "k";
    auto pipeline = server::make_pipeline(config, store);
    OfflineConnection conn{*pipeline};
    std::string bad = "POST /update/gauge/x/1 HTTP/1.1\r\nHost: t\r\nHashSHA256: 00\r\nContent-Length: 1\r\n\r\nx";
    auto answer = conn.handle(bad);
    CHECK(answer.status == 400);
    CHECK(answer.head.find("HashSHA256: ") != std::string_view::npos);
}

TEST_CASE_FIXTURE(Fixture, "on the memory store the router answers as a plain call, except listings and ping")
{
    // Each request goes through Pipeline::run_now as the listener sends it; the answers are
    // those of the coroutine path (the other tests here, and the PostgreSQL ones, use both).
    const auto plain = [&](std::string raw) {
        http::RequestParser parser;
        std::vector<char> wire{raw.begin(), raw.end()};
        REQUIRE(parser.parse(wire) == http::RequestParser::State::done);
        server::Response response;
        server::Scratch scratch;
        server::Exchange ex{parser.request(), parser.request().body, response, scratch, "test"};
        const bool answered = pipeline->run_now(ex);
        return std::pair{answered, answered ? std::string{response.payload()} : std::string{}};
    };
    CHECK(plain(post("/update/gauge/g/2.5", {}, {})) == std::pair{true, std::string{"OK"}});
    CHECK(plain(get("/value/gauge/g")) == std::pair{true, std::string{"2.5"}});
    CHECK(plain(post("/update/", R"({"id":"c","type":"counter","delta":3})")) ==
          std::pair{true, std::string{R"({"id":"c","type":"counter","delta":3})"}});
    CHECK(plain(post("/value/", R"({"id":"c","type":"counter"})")) ==
          std::pair{true, std::string{R"({"id":"c","type":"counter","delta":3})"}});
    CHECK(plain(post("/updates/", R"([{"id":"c","type":"counter","delta":1}])")) ==
          std::pair{true, std::string{R"([{"id":"c","type":"counter","delta":4}])"}});
    CHECK(plain(post("/update/", "{")).first);  // errors too: 400 as a plain call
    CHECK(plain(get("/nowhere")).first);
    CHECK_FALSE(plain(get("/")).first);
    CHECK_FALSE(plain(get("/metrics")).first);
    CHECK_FALSE(plain(get("/ping")).first);
    CHECK(test::counter(store.map(), "c") == 4);
    CHECK_FALSE(plain(get("/values/")).first);
    CHECK(plain(del("/value/counter/c")) == std::pair{true, std::string{"4"}});
    CHECK(plain(del("/value/", R"({"id":"c","type":"counter"})", "application/json")).first);  // 404, at once
}

TEST_CASE_FIXTURE(Fixture, "every path is routed by its exact spelling, then by the method")
{
    conn.handle(post("/update/gauge/g/1", {}, {}));
    // Paths near the routes' spellings: one byte more, fewer or different is not found.
    for (std::string_view path : {"/updat", "/update", "/updates", "/updates/x", "/value", "/valu/", "/Value/",
                                  "/update-/", "/pin", "/pings", "/metric", "/metricsx", "//", "/x/"}) {
        CAPTURE(path);
        CHECK(conn.handle(get(path)).status == 404);
        CHECK(conn.handle(post(path, "{}")).status == 404);
    }
    // The right spelling with the wrong method: Allow names every method of the path.
    for (const auto& [route, allow] : std::vector<std::pair<std::string_view, std::string_view>>{
             {"/update/", "POST"}, {"/updates/", "POST"}, {"/value/", "POST, DELETE"}, {"/update/gauge/g/1", "POST"}}) {
        const std::string_view path = route;  // clang 14 cannot capture a structured binding in CAPTURE
        CAPTURE(path);
        auto answer = conn.handle(get(path));
        CHECK(answer.status == 405);
        CHECK(answer.head.find("Allow: " + std::string{allow} + "\r\n") != std::string_view::npos);
    }
    for (const auto& [route, allow] : std::vector<std::pair<std::string_view, std::string_view>>{
             {"/", "GET, HEAD"}, {"/ping", "GET, HEAD"}, {"/metrics", "GET, HEAD"}, {"/values/", "GET, HEAD"},
             {"/value/gauge/g", "GET, HEAD, DELETE"}}) {
        const std::string_view path = route;
        CAPTURE(path);
        auto answer = conn.handle(post(path, "{}"));
        CHECK(answer.status == 405);
        CHECK(answer.head.find("Allow: " + std::string{allow} + "\r\n") != std::string_view::npos);
    }
    // The right spelling and method.
    CHECK(conn.handle(get("/value/gauge/g")).body == "1");
    CHECK(conn.handle(post("/value/", R"({"id":"g","type":"gauge"})")).status == 200);
    CHECK(conn.handle(post("/update/", R"({"id":"g","type":"gauge","value":2})")).status == 200);
    CHECK(conn.handle(post("/updates/", R"([{"id":"g","type":"gauge","value":3}])")).status == 200);
    CHECK(conn.handle(get("/")).status == 200);
    CHECK(conn.handle(get("/ping")).status == 200);
    CHECK(conn.handle(get("/metrics")).status == 200);
}

TEST_CASE_FIXTURE(Fixture, "DELETE of a URL metric answers its last value as text, then it is gone")
{
    REQUIRE(conn.handle(post("/update/counter/c/5", {}, {})).status == 200);
    REQUIRE(conn.handle(post("/update/gauge/c/2.5", {}, {})).status == 200);
    auto answer = conn.handle(del("/value/counter/c"));
    CHECK(answer.status == 200);
    CHECK(answer.body == "5");
    CHECK(answer.head.find("Content-Type: text/plain") != std::string_view::npos);
    CHECK(conn.handle(get("/value/counter/c")).status == 404);
    CHECK(conn.handle(del("/value/counter/c")).status == 404);
    CHECK(conn.handle(get("/value/gauge/c")).body == "2.5");  // the other kind stays
    // A deleted counter starts again from 0.
    REQUIRE(conn.handle(post("/update/counter/c/3", {}, {})).status == 200);
    CHECK(conn.handle(get("/value/counter/c")).body == "3");
    // Bad paths: not found, as for GET.
    CHECK(conn.handle(del("/value/bogus/c")).status == 404);
    CHECK(conn.handle(del("/value/counter/c/")).status == 404);
    CHECK(conn.handle(del("/value/counter/")).status == 404);
}

TEST_CASE_FIXTURE(Fixture, "DELETE /value/ with JSON answers the removed metric as JSON")
{
    REQUIRE(conn.handle(post("/update/", R"({"id":"g","type":"gauge","value":1.5})")).status == 200);
    auto answer = conn.handle(del("/value/", R"({"id":"g","type":"gauge"})", "application/json"));
    CHECK(answer.status == 200);
    CHECK(answer.body == R"({"id":"g","type":"gauge","value":1.5})");
    CHECK(conn.handle(del("/value/", R"({"id":"g","type":"gauge"})", "application/json")).status == 404);
    CHECK(conn.handle(del("/value/", R"({"id":"g"})", "application/json")).status == 400);
    CHECK(conn.handle(del("/value/", R"({"id":"g","type":"gauge"})", "text/plain")).status == 415);
    CHECK(conn.handle(del("/value/", "{", "application/json")).status == 400);
    CHECK(conn.handle(del("/update/", R"({"id":"g","type":"gauge"})", "application/json")).status == 405);
}

TEST_CASE_FIXTURE(Fixture, "GET /values/ lists every metric sorted by id with its update time")
{
    CHECK(conn.handle(get("/values/")).body == "[]");
    REQUIRE(conn.handle(post("/update/counter/b/2", {}, {})).status == 200);
    REQUIRE(conn.handle(post("/update/gauge/b/0.5", {}, {})).status == 200);
    REQUIRE(conn.handle(post("/update/gauge/a/1", {}, {})).status == 200);
    const auto all = store.map().list();
    REQUIRE(all.size() == 3);
    auto answer = conn.handle(get("/values/"));
    CHECK(answer.status == 200);
    CHECK(answer.head.find("Content-Type: application/json") != std::string_view::npos);
    CHECK(answer.body == R"([{"id":"a","type":"gauge","value":1,"updated_at":)" + std::to_string(all[0].updated_at) +
                             R"(},{"id":"b","type":"gauge","value":0.5,"updated_at":)" +
                             std::to_string(all[1].updated_at) +
                             R"(},{"id":"b","type":"counter","delta":2,"updated_at":)" +
                             std::to_string(all[2].updated_at) + "}]");
    CHECK(all[0].updated_at > 1'700'000'000'000);  // Unix milliseconds of now, not seconds
}

TEST_CASE("a path matches at most one endpoint row, so the table's order is free")
{
    for (const auto& row : server::endpoints)
        for (const std::string& path : {std::string{row.path}, std::string{row.path} + "x", std::string{row.path} + "gauge/x/1"}) {
            CAPTURE(path);
            int matches = 0;
            for (const auto& other : server::endpoints) {
                const bool fits = other.prefix ? path.size() > other.path.size() : path.size() == other.path.size();
                matches += fits && path.starts_with(other.path) ? 1 : 0;
            }
            CHECK(matches <= 1);
            CHECK((server::find_endpoint(path) != nullptr) == (matches == 1));
        }
}
