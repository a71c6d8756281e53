#include "server/address.hpp"

#include <doctest/doctest.h>

TEST_CASE("listen addresses accept the Go server's forms")
{
    auto a = server::resolve_listen_address("127.0.0.1:8080");
    REQUIRE(a);
    CHECK(a->port() == 8080);
    CHECK(a->address().to_string() == "127.0.0.1");
    CHECK(server::resolve_listen_address("http://127.0.0.1:9/")->port() == 9);
    auto any = server::resolve_listen_address(":8081");
    REQUIRE(any);
    CHECK(any->address().is_unspecified());
    CHECK(server::resolve_listen_address("[::1]:80")->address().to_string() == "::1");
    CHECK(server::resolve_listen_address("localhost:8080")->address().is_loopback());
}

TEST_CASE("malformed listen addresses are refused")
{
    CHECK(server::resolve_listen_address("8080").error() == core::Errc::bad_value);
    CHECK(server::resolve_listen_address("host:").error() == core::Errc::bad_value);
    CHECK(server::resolve_listen_address("host:99999").error() == core::Errc::bad_value);
    CHECK(server::resolve_listen_address("127.0.0.1:80x").error() == core::Errc::bad_value);
}
