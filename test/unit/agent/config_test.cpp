#include "agent/config.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;

TEST_CASE("server addresses accept the Go agent's forms")
{
    CHECK(*agent::parse_server_address("localhost:8080") == agent::ServerAddress{"localhost", "8080"});
    CHECK(*agent::parse_server_address("http://127.0.0.1:9/") == agent::ServerAddress{"127.0.0.1", "9"});
    CHECK(*agent::parse_server_address("[::1]:80") == agent::ServerAddress{"::1", "80"});
}

TEST_CASE("malformed server addresses are refused")
{
    for (const char* bad : {"8080", "host:", ":8080", "host:0", "host:65536", "host:80x", "http://"})
        CHECK_MESSAGE(agent::parse_server_address(bad).error() == core::Errc::bad_value, bad);
}

TEST_CASE("flags set the agent's configuration, defaults otherwise")
{
    agent::Config c;
    const char* argv[] = {"metrics-agent", "-a", "example:1", "-p=1", "-r", "2", "-l", "3", "-k", "key", "-queue=4"};
    REQUIRE(!agent::load_config(static_cast<int>(std::size(argv)), argv, c));
    CHECK(c.address == "example:1");
    CHECK(c.poll_interval == 1s);
    CHECK(c.report_interval == 2s);
    CHECK(c.rate_limit == 3);
    CHECK(c.key == "key");
    CHECK(c.queue_size == 4);
    CHECK(c.crypto_key.empty());
    CHECK(c.shutdown_timeout == 5s);
}

TEST_CASE("a rate limit below 1 is a usage error")
{
    agent::Config c;
    const char* argv[] = {"metrics-agent", "-l", "0"};
    auto exit = agent::load_config(3, argv, c);
    REQUIRE(exit);
    CHECK(*exit == 2);
}
