#include "http/parser.hpp"

#include "unit/http/support.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using core::Errc;
using http::Limits;
using http::ResponseParser;
using State = ResponseParser::State;

namespace {

Errc error_of(std::string_view wire, Limits limits = {})
{
    ResponseParser parser{limits};
    std::vector<char> buffer = test::bytes(wire);
    return parser.parse(buffer) == State::error ? parser.error() : Errc::ok;
}

}  // namespace

TEST_CASE("a Content-Length response is parsed")
{
    constexpr std::string_view wire =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    std::vector<char> buffer = test::bytes(wire);
    ResponseParser parser;
    REQUIRE(parser.parse(buffer) == State::done);
    const http::Response& r = parser.response();
    CHECK(r.status == 200);
    CHECK(r.reason == "OK");
    CHECK(r.version_minor == 1);
    CHECK(r.header("content-type") == "application/json");
    CHECK(r.body == "{}");
    CHECK(r.keep_alive);
    CHECK(parser.consumed() == wire.size());
    CHECK(parser.body_bytes_expected() == 2);
}

TEST_CASE("a chunked response fed byte by byte is de-chunked")
{
    constexpr std::string_view wire =
        "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n";
    ResponseParser parser;
    std::vector<char> buffer;
    REQUIRE(test::feed_bytewise(parser, wire, buffer) == State::done);
    CHECK(parser.response().status == 500);
    CHECK(parser.response().reason == "Internal Server Error");
    CHECK(parser.response().body == "abcde");
    CHECK(parser.consumed() == wire.size());
}

TEST_CASE("a response without framing ends at EOF")
{
    std::vector<char> buffer = test::bytes("HTTP/1.1 200 OK\r\n\r\nsome body");
    ResponseParser parser;
    REQUIRE(parser.parse(buffer) == State::need_more);
    REQUIRE(parser.finish_eof() == State::done);
    CHECK(parser.response().body == "some body");
    CHECK(!parser.response().keep_alive);
    CHECK(parser.consumed() == buffer.size());

    SUBCASE("within max_body") {
        Limits limits;
        limits.max_body = 8;
        ResponseParser small{limits};
        CHECK(small.parse(buffer) == State::error);
        CHECK(small.error() == Errc::body_too_large);
    }
}

TEST_CASE("EOF before the response is complete is an error")
{
    const std::string_view cases[] = {
        "",
        "HTTP/1.1 200 OK\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    };
    for (std::string_view wire : cases) {
        CAPTURE(wire);
        ResponseParser parser;
        std::vector<char> buffer = test::bytes(wire);
        REQUIRE(parser.parse(buffer) == State::need_more);
        CHECK(parser.finish_eof() == State::error);
        CHECK(parser.error() == Errc::bad_request);
    }
}

TEST_CASE("responses to HEAD, 204 and 304 have no body")
{
    SUBCASE("HEAD") {
        ResponseParser parser;
        parser.set_head_request(true);
        std::vector<char> buffer = test::bytes("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        REQUIRE(parser.parse(buffer) == State::done);
        CHECK(parser.response().body.empty());
        CHECK(parser.consumed() == buffer.size());
        parser.reset();  // the HEAD flag survives
        REQUIRE(parser.parse(buffer) == State::done);
    }
    for (std::string_view status : {"204 No Content", "304 Not Modified"}) {
        CAPTURE(status);
        ResponseParser parser;
        std::vector<char> buffer =
            test::bytes("HTTP/1.1 " + std::string(status) + "\r\nContent-Length: 7\r\n\r\nHTTP/1.1");
        REQUIRE(parser.parse(buffer) == State::done);
        CHECK(parser.response().body.empty());
        CHECK(parser.consumed() == buffer.size() - 8);
    }
}

TEST_CASE("interim responses are skipped")
{
    constexpr std::string_view wire =
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        "HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx";
    ResponseParser parser;
    std::vector<char> buffer;
    REQUIRE(test::feed_bytewise(parser, wire, buffer) == State::done);
    CHECK(parser.response().status == 201);
    REQUIRE(parser.response().headers.size() == 1);
    CHECK(parser.response().headers[0].name == "Content-Length");
    CHECK(parser.response().body == "x");
    CHECK(parser.consumed() == wire.size());

    SUBCASE("their headers are forgotten, framing and index alike") {
        ResponseParser p;
        std::vector<char> b = test::bytes("HTTP/1.1 103 Early Hints\r\nContent-Type: a\r\nContent-Length: 5\r\n\r\n"
                                          "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny");
        REQUIRE(p.parse(b) == State::done);
        CHECK(p.response().body == "y");
        CHECK(!p.response().header(http::Field::content_type));
        CHECK(p.response().header(http::Field::content_length) == "1");
    }
    SUBCASE("but no more than two") {
        CHECK(error_of("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
                       "HTTP/1.1 100 Continue\r\n\r\n") == Errc::bad_request);
    }
    SUBCASE("and 101 is refused") {
        CHECK(error_of("HTTP/1.1 101 Switching Protocols\r\n\r\n") == Errc::bad_request);
    }
}

TEST_CASE("response keep-alive follows the version and Connection")
{
    struct Case {
        std::string_view wire;
        bool keep_alive;
    };
    const Case cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
    };
    for (const Case& c : cases) {
        CAPTURE(c.wire);
        ResponseParser parser;
        std::vector<char> buffer = test::bytes(c.wire);
        REQUIRE(parser.parse(buffer) == State::done);
        CHECK(parser.response().keep_alive == c.keep_alive);
    }
}

TEST_CASE("a status line may omit the reason")
{
    for (std::string_view line : {"HTTP/1.1 200\r\n", "HTTP/1.1 200 \r\n"}) {
        CAPTURE(line);
        ResponseParser parser;
        std::vector<char> buffer = test::bytes(std::string(line) + "Content-Length: 0\r\n\r\n");
        REQUIRE(parser.parse(buffer) == State::done);
        CHECK(parser.response().status == 200);
        CHECK(parser.response().reason.empty());
    }
}

TEST_CASE("malformed responses are rejected")
{
    const std::string_view cases[] = {
        "HTTP/1.2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "HTTP/1.1 600 OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\n X: folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n",
    };
    for (std::string_view wire : cases) {
        CAPTURE(wire);
        CHECK(error_of(wire) == Errc::bad_request);
    }
}

TEST_CASE("response limits: status line, headers and body")
{
    Limits limits;
    limits.max_request_line = 20;
    limits.max_body = 4;
    CHECK(error_of("HTTP/1.1 200 " + std::string(20, 'r') + "\r\n", limits) ==
          Errc::header_too_large);
    CHECK(error_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", limits) == Errc::body_too_large);
    CHECK(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n", limits) ==
          Errc::body_too_large);
}
