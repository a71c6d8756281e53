#include "server/response.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

// The head `r` writes after what `out` already holds, which must stay.
std::string head_of(const server::Response& r, int version_minor = 1, bool keep_alive = true)
{
    fmt::memory_buffer out;
    out.append(std::string_view{"kept"});
    r.write_head(out, version_minor, keep_alive);
    const std::string all = fmt::to_string(out);
    REQUIRE(all.starts_with("kept"));
    return all.substr(4);
}

}  // namespace

TEST_CASE("the response head has the status line, type, length and a blank line")
{
    server::Response r;
    r.json([](fmt::memory_buffer& out) { out.append(std::string_view{R"({"a":1})"}); });
    CHECK(head_of(r) == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n");

    SUBCASE("HTTP/1.0 keep-alive is said explicitly") {
        CHECK(head_of(r, 0, true) ==
              "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"
              "Connection: keep-alive\r\n\r\n");
    }
    SUBCASE("so is a close, in either version") {
        CHECK(head_of(r, 1, false) ==
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"
              "Connection: close\r\n\r\n");
        CHECK(head_of(r, 0, false).ends_with("Content-Length: 7\r\nConnection: close\r\n\r\n"));
    }
    SUBCASE("extra headers follow in the order added") {
        r.add_header("Vary", "Accept-Encoding");
        r.add_header("HashSHA256", "ab");
        CHECK(head_of(r) ==
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"
              "Vary: Accept-Encoding\r\nHashSHA256: ab\r\n\r\n");
    }
    SUBCASE("the length is the payload's: the encoded body when there is one") {
        r.encoded.assign(1234567, 'x');
        r.body_is_encoded = true;
        CHECK(head_of(r).find("\r\nContent-Length: 1234567\r\n") != std::string::npos);
    }
}

TEST_CASE("200 answers of every content type, however the type's text was made, have the same head")
{
    // The usual ones are copied from a prefix laid out in advance; a type equal to a constant but
    // at another address (a copy), and a type without a prefix, are written piece by piece.
    const std::string json_copy{server::content_type::json};
    const std::string text_copy{server::content_type::text};
    for (std::string_view type : {server::content_type::json, server::content_type::text, server::content_type::html,
                                  server::content_type::prometheus, std::string_view{json_copy},
                                  std::string_view{text_copy}, std::string_view{"application/jsoN"}}) {
        CAPTURE(type);
        server::Response r;
        r.text("OK");
        r.type = type;
        for (int minor : {0, 1}) {
            const std::string expected = "HTTP/1." + std::to_string(minor) + " 200 OK\r\nContent-Type: " +
                                         std::string{type} + "\r\nContent-Length: 2\r\n" +
                                         (minor == 0 ? "Connection: keep-alive\r\n" : "") + "\r\n";
            CHECK(head_of(r, minor, true) == expected);
        }
    }
}

TEST_CASE("failures carry their status and reason; an empty body has length 0")
{
    server::Response r;
    r.fail(404, "not found");
    CHECK(head_of(r) ==
          "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\n");
    r.fail(299, "");
    r.body.clear();
    CHECK(head_of(r).starts_with("HTTP/1.1 299 Unknown\r\n"));
    CHECK(head_of(r).find("\r\nContent-Length: 0\r\n") != std::string::npos);
}

TEST_CASE("a busy storage is a 503 that says when to come back; other failures are not")
{
    server::Response r;
    r.fail(core::Errc::storage_busy);
    CHECK(head_of(r) == "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: 26\r\nRetry-After: 1\r\n\r\n");
    CHECK(fmt::to_string(r.body) == "storage busy, retry later\n");
    r.clear();
    r.fail(core::Errc::outcome_unknown);
    CHECK(head_of(r).starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    CHECK(head_of(r).find("Retry-After") == std::string::npos);
}

TEST_CASE("a head longer than the buffer's inline room grows it")
{
    server::Response r;
    const std::string value(120, 'v');
    for (std::size_t i = 0; i < server::Response::max_extra_headers; ++i)
        r.add_header("X-Long", value);
    const std::string head = head_of(r);
    CHECK(head.size() > 1000);
    CHECK(head.ends_with("X-Long: " + value + "\r\n\r\n"));
}
