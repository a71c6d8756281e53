#include "http/message.hpp"

#include <doctest/doctest.h>

#include <array>

using http::header_has_token;
using http::iequals;

TEST_CASE("iequals ignores ASCII case only")
{
    CHECK(iequals("Content-Length", "content-LENGTH"));
    CHECK(iequals("", ""));
    CHECK(!iequals("Host", "Hos"));
    CHECK(!iequals("a", "\xc1"));
    CHECK(!iequals("[", "{"));  // 0x5b and 0x7b differ by the case bit but are not letters
    CHECK(iequals("application/json", "application/JSON"));  // equal first word, folded rest
    CHECK(!iequals("abcdefgh1", "abcdefgh2"));
    CHECK(!iequals("abcdefgh[", "ABCDEFGH{"));
}

TEST_CASE("header_has_token finds a token in a comma-separated list")
{
    CHECK(header_has_token("gzip", "gzip"));
    CHECK(header_has_token("deflate, GZIP;q=1.0, br", "gzip"));
    CHECK(header_has_token("  keep-alive ,close ", "close"));
    CHECK(header_has_token("chunked", "Chunked"));
    CHECK(!header_has_token("gzipped, x-gzip", "gzip"));
    CHECK(!header_has_token("", "gzip"));
    CHECK(!header_has_token(",,", "gzip"));
    CHECK(header_has_token(",,close", "close"));
}

TEST_CASE("a header is found by name, first match wins")
{
    const std::array<http::Header, 3> headers{{{"Host", "a"}, {"HashSHA256", "x"}, {"hashsha256", "y"}}};
    http::Request r;
    r.headers = headers;
    CHECK(r.header("Hashsha256") == "x");
    CHECK(r.header("host") == "a");
    CHECK(!r.header("Content-Type"));
}
