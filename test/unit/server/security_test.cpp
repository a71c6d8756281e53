#include "server/audit.hpp"
#include "server/guards.hpp"
#include "server/offline.hpp"
#include "server/pipeline.hpp"
#include "server/subnet.hpp"

#include "codec/gzip.hpp"
#include "codec/hmac.hpp"
#include "codec/sealed_box.hpp"
#include "storage/memory.hpp"
#include "support/memory.hpp"
#include "support/run.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

using server::parse_ip;
using server::Subnet;

asio::ip::address ip(const char* text) { return asio::ip::make_address(text); }

bool inside(const char* cidr, const char* address)
{
    auto subnet = Subnet::parse(cidr);
    REQUIRE(subnet);
    return subnet->contains(ip(address));
}

}  // namespace

TEST_CASE("an IPv4 CIDR contains exactly the addresses under its prefix")
{
    CHECK(inside("10.0.0.0/8", "10.0.0.1"));
    CHECK(inside("10.0.0.0/8", "10.255.255.255"));
    CHECK(!inside("10.0.0.0/8", "11.0.0.0"));
    CHECK(!inside("10.0.0.0/8", "9.255.255.255"));
    CHECK(inside("192.168.1.0/25", "192.168.1.127"));
    CHECK(!inside("192.168.1.0/25", "192.168.1.128"));

    SUBCASE("prefix 0 is every IPv4 address and no IPv6 one") {
        CHECK(inside("0.0.0.0/0", "1.2.3.4"));
        CHECK(inside("0.0.0.0/0", "255.255.255.255"));
        CHECK(!inside("0.0.0.0/0", "2001:db8::1"));
    }
    SUBCASE("prefix 32 is one address") {
        CHECK(inside("127.0.0.1/32", "127.0.0.1"));
        CHECK(!inside("127.0.0.1/32", "127.0.0.2"));
    }
    SUBCASE("host bits are ignored, as Go's ParseCIDR does") {
        CHECK(inside("10.1.2.3/8", "10.9.9.9"));
        CHECK(Subnet::parse("10.1.2.3/8")->to_string() == "10.0.0.0/8");
    }
}

TEST_CASE("an IPv6 CIDR contains exactly the addresses under its prefix")
{
    CHECK(inside("fd00::/8", "fd12:3456::1"));
    CHECK(!inside("fd00::/8", "fe80::1"));
    CHECK(inside("2001:db8::/33", "2001:db8:7fff::1"));
    CHECK(!inside("2001:db8::/33", "2001:db8:8000::1"));
    CHECK(inside("::/0", "::1"));
    CHECK(!inside("::/0", "127.0.0.1"));
    CHECK(inside("::1/128", "::1"));
    CHECK(!inside("::1/128", "::2"));
}

TEST_CASE("IPv4-mapped IPv6 addresses are the IPv4 addresses they map")
{
    CHECK(inside("127.0.0.0/8", "::ffff:127.0.0.1"));
    CHECK(!inside("127.0.0.0/8", "::ffff:128.0.0.1"));
    CHECK(inside("::ffff:10.0.0.0/104", "10.20.30.40"));
    CHECK(Subnet::parse("::ffff:10.0.0.0/104")->to_string() == "10.0.0.0/8");
    CHECK(!Subnet::parse("::ffff:10.0.0.0/95"));
}

TEST_CASE("malformed CIDR text is refused")
{
    for (const char* bad : {"", "10.0.0.0", "10.0.0.0/", "/8", "10.0.0.0/33", "::/129", "10.0.0.0/08", "10.0.0/8",
                            "10.0.0.0/8 ", " 10.0.0.0/8", "10.0.0.0/+8", "10.0.0.0/-1", "10.0.0.0/8/8", "010.0.0.0/8",
                            "fe80::1%eth0/64", "[::1]/128", "host/8", "10.0.0.0/1000", "1.2.3.4.5/8"}) {
        CAPTURE(bad);
        CHECK(Subnet::parse(bad).error() == core::Errc::bad_value);
    }
}

TEST_CASE("X-Real-IP text is an IPv4 or IPv6 address and nothing else")
{
    CHECK(*parse_ip("192.0.2.7") == ip("192.0.2.7"));
    CHECK(*parse_ip("2001:db8::7") == ip("2001:db8::7"));
    CHECK(*parse_ip("::ffff:192.0.2.7") == ip("::ffff:192.0.2.7"));
    for (std::string_view bad : {std::string_view{""}, std::string_view{"192.0.2"}, std::string_view{"192.0.2.256"},
                                 std::string_view{"192.0.2.7:80"}, std::string_view{"[::1]"},
                                 std::string_view{"fe80::1%eth0"}, std::string_view{"192.0.2.7 "},
                                 std::string_view{"1.2.3.4, 5.6.7.8"}, std::string_view{"localhost"},
                                 std::string_view{"1.2.3.4\0junk", 12},
                                 std::string_view{"1111:2222:3333:4444:5555:6666:7777:8888:9999"}}) {
        CAPTURE(bad);
        CHECK(parse_ip(bad).error() == core::Errc::bad_value);
    }
}

// ---------------------------------------------------------------------------------------------
// Through the pipeline

namespace {

struct Protected {
    explicit Protected(server::Security s, std::string key = {}) : security(std::move(s))
    {
        config.access_log = false;
        config.key = std::move(key);
        config.require_hash = true;
        pipeline = server::make_pipeline(config, store, security);
        conn.emplace(*pipeline);
    }
    storage::MemoryStorage store;
    server::Config config;
    server::Security security;
    std::unique_ptr<server::Pipeline> pipeline;
    std::optional<server::OfflineConnection> conn;

    int post(std::string_view target, std::string_view extra_headers = {}, std::string_view body = {})
    {
        return conn->handle(std::string{"POST "} + std::string{target} + " HTTP/1.1\r\nHost: t\r\n" +
                            std::string{extra_headers} + "Content-Length: " + std::to_string(body.size()) +
                            "\r\n\r\n" + std::string{body})
            .status;
    }
};

server::Security subnet(const char* cidr)
{
    server::Security s;
    s.trusted_subnet = *Subnet::parse(cidr);
    return s;
}

}  // namespace

TEST_CASE("the trusted subnet answers 403 to a missing, malformed or outside X-Real-IP")
{
    Protected p{subnet("10.0.0.0/8")};
    CHECK(p.post("/update/gauge/g/1", "X-Real-IP: 10.1.2.3\r\n") == 200);
    CHECK(p.post("/update/gauge/g/1", "X-Real-IP: ::ffff:10.1.2.3\r\n") == 200);
    CHECK(p.post("/update/gauge/g/1") == 403);
    CHECK(p.post("/update/gauge/g/1", "X-Real-IP: 11.1.2.3\r\n") == 403);
    CHECK(p.post("/update/gauge/g/1", "X-Real-IP: 10.1.2\r\n") == 403);
    CHECK(p.post("/update/gauge/g/1", "X-Real-IP: \r\n") == 403);
    SUBCASE("before any body work: a gzip body that would not inflate is not looked at") {
        CHECK(p.post("/update/", "Content-Type: application/json\r\nContent-Encoding: gzip\r\n", "junk") == 403);
    }
    SUBCASE("on every endpoint") {
        CHECK(p.conn->handle("GET /value/gauge/g HTTP/1.1\r\nHost: t\r\n\r\n").status == 403);
        CHECK(p.conn->handle("GET /value/gauge/g HTTP/1.1\r\nHost: t\r\nX-Real-IP: 10.0.0.1\r\n\r\n").status == 200);
        CHECK(p.conn->handle("GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n").status == 403);
    }
}

TEST_CASE("with --require-hash a request without HashSHA256 is 401 and a wrong one 400")
{
    Protected p{{}, "k"};
    const std::string body = R"({"id":"g","type":"gauge","value":1})";
    const std::string json = "Content-Type: application/json\r\n";
    CHECK(p.post("/update/", json, body) == 401);
    CHECK(p.post("/update/", json + "HashSHA256: " + std::string(64, '0') + "\r\n", body) == 400);
    const auto good = codec::hmac_sha256_hex("k", body);
    CHECK(p.post("/update/", json + "HashSHA256: " + std::string{codec::view(good)} + "\r\n", body) == 200);
}

TEST_CASE("a sealed, signed, gzipped body is checked, opened and inflated in that order")
{
    const auto keys = codec::KeyPair::generate();
    server::Security s;
    s.keys = &keys;
    Protected p{std::move(s), "k"};
    codec::Gzip gz;
    std::string packed;
    gz.compress(R"([{"id":"g","type":"gauge","value":2.5}])", packed);
    std::string box;
    codec::seal(keys.public_key(), packed, box);
    const auto sign = [](std::string_view b) { return std::string{codec::view(codec::hmac_sha256_hex("k", b))}; };
    const std::string head = "Content-Type: application/json\r\nContent-Encoding: gzip\r\nX-Encrypted: sealed-box\r\n";

    CHECK(p.post("/updates/", head + "HashSHA256: " + sign(box) + "\r\n", box) == 200);
    CHECK(test::gauge(p.store.map(), "g") == 2.5);

    SUBCASE("a signature over the plaintext instead of the wire bytes is refused") {
        CHECK(p.post("/updates/", head + "HashSHA256: " + sign(packed) + "\r\n", box) == 400);
    }
    SUBCASE("a tampered box is 400 and stores nothing") {
        std::string bad = box;
        gz.compress(R"([{"id":"t","type":"gauge","value":1}])", packed);
        codec::seal(keys.public_key(), packed, bad);
        bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 1);
        CHECK(p.post("/updates/", head + "HashSHA256: " + sign(bad) + "\r\n", bad) == 400);
        CHECK(!p.store.map().get(core::Kind::gauge, "t"));
    }
    SUBCASE("a box sealed to another key is 400") {
        const auto other = codec::KeyPair::generate();
        std::string foreign;
        codec::seal(other.public_key(), packed, foreign);
        CHECK(p.post("/updates/", head + "HashSHA256: " + sign(foreign) + "\r\n", foreign) == 400);
    }
    SUBCASE("an unknown X-Encrypted scheme is 400") {
        CHECK(p.post("/updates/", "X-Encrypted: rsa\r\nHashSHA256: " + sign(box) + "\r\n", box) == 400);
    }
    SUBCASE("plain requests stay accepted") {
        const std::string plain = R"({"id":"p","type":"counter","delta":3})";
        CHECK(p.post("/update/", "Content-Type: application/json\r\nHashSHA256: " + sign(plain) + "\r\n", plain) == 200);
    }
}

// ---------------------------------------------------------------------------------------------
// Audit

TEST_CASE("an audit event lists ids in order as JSON strings, escapes included")
{
    std::string ids;
    server::append_audit_id(ids, "Alloc");
    server::append_audit_id(ids, "quote\"back\\slash");
    server::append_audit_id(ids, std::string_view{"ctl\x01\n", 5});
    CHECK(server::audit_event(1700000000, ids, "10.0.0.1") ==
          R"({"ts":1700000000,"metrics":["Alloc","quote\"back\\slash","ctl\u0001\u000a"],"ip_address":"10.0.0.1"})");
    CHECK(server::audit_event(5, "", "::1") == R"({"ts":5,"metrics":[],"ip_address":"::1"})");
}

namespace {

/// Records what it is given; delivers only while `accept` is true.
class ManualSink final : public server::AuditSink {
public:
    std::string_view name() const noexcept override { return "manual"; }
    asio::awaitable<std::size_t> deliver(std::span<const std::string_view> events) override
    {
        seen.insert(seen.end(), events.begin(), events.end());
        ++batches;
        co_return accept ? events.size() : 0;
    }
    asio::awaitable<void> flush() override
    {
        ++flushes;
        co_return;
    }
    std::vector<std::string> seen;
    bool accept = true;
    int flushes = 0;
    int batches = 0;
};

}  // namespace

TEST_CASE("a full audit queue drops the newest event and counts it")
{
    server::AuditHub hub{2};
    auto owned = std::make_unique<ManualSink>();
    ManualSink& sink = *owned;
    hub.add(std::move(owned));
    hub.publish("one");
    hub.publish("two");
    hub.publish("three");
    CHECK(hub.dropped() == 1);
    test::run([&]() -> asio::awaitable<void> {
        hub.start(co_await asio::this_coro::executor);
        co_await hub.close(std::chrono::steady_clock::now() + std::chrono::seconds{5});
    }());
    CHECK(sink.seen == std::vector<std::string>{"one", "two"});
    CHECK(sink.batches == 1);  // what had queued up goes to the sink at once
    CHECK(hub.delivered() == 2);
    CHECK(hub.failed() == 0);
    CHECK(sink.flushes >= 1);
    SUBCASE("after close nothing more is queued") {
        hub.publish("late");
        CHECK(hub.dropped() == 2);
    }
}

TEST_CASE("an audit sink that refuses an event counts a failed delivery and goes on")
{
    server::AuditHub hub{4};
    auto owned = std::make_unique<ManualSink>();
    ManualSink& sink = *owned;
    sink.accept = false;
    hub.add(std::move(owned));
    hub.publish("a");
    hub.publish("b");
    test::run([&]() -> asio::awaitable<void> {
        hub.start(co_await asio::this_coro::executor);
        co_await hub.close(std::chrono::steady_clock::now() + std::chrono::seconds{5});
    }());
    CHECK(sink.seen.size() == 2);
    CHECK(hub.failed() == 2);
    CHECK(hub.delivered() == 0);
}

TEST_CASE("only successful update requests are audited, each once with its ids in order")
{
    server::AuditHub hub{16};
    auto owned = std::make_unique<ManualSink>();
    ManualSink& sink = *owned;
    hub.add(std::move(owned));
    server::Security s;
    s.audit = &hub;
    Protected p{std::move(s)};
    const std::string json = "Content-Type: application/json\r\n";
    CHECK(p.post("/update/counter/c/1", "X-Real-IP: 192.0.2.9\r\n") == 200);
    CHECK(p.post("/updates/", json, R"([{"id":"b","type":"gauge","value":1},{"id":"a","type":"counter","delta":2}])") ==
          200);
    CHECK(p.post("/update/", json + "X-Real-IP: not-an-ip\r\n", R"({"id":"x\"y","type":"gauge","value":3})") == 200);
    CHECK(p.post("/update/gauge/bad/zz") == 400);
    CHECK(p.post("/updates/", json, R"([{"id":"b","type":"gauge","value":1},{"id":"a"}])") == 400);
    CHECK(p.conn->handle("GET /value/gauge/b HTTP/1.1\r\nHost: t\r\n\r\n").status == 200);
    CHECK(p.post("/value/", json, R"({"id":"b","type":"gauge"})") == 200);
    test::run([&]() -> asio::awaitable<void> {
        hub.start(co_await asio::this_coro::executor);
        co_await hub.close(std::chrono::steady_clock::now() + std::chrono::seconds{5});
    }());
    REQUIRE(sink.seen.size() == 3);
    const auto without_ts = [](const std::string& e) { return e.substr(e.find(',') + 1); };
    CHECK(sink.seen[0].starts_with(R"({"ts":)"));
    CHECK(without_ts(sink.seen[0]) == R"("metrics":["c"],"ip_address":"192.0.2.9"})");
    CHECK(without_ts(sink.seen[1]) == R"("metrics":["b","a"],"ip_address":"offline"})");
    CHECK(without_ts(sink.seen[2]) == R"("metrics":["x\"y"],"ip_address":"offline"})");
}

TEST_CASE("an audit URL is http://host[:port][/path]")
{
    auto u = server::parse_http_url("http://127.0.0.1:9000/audit");
    REQUIRE(u);
    CHECK((u->host == "127.0.0.1" && u->port == "9000" && u->target == "/audit"));
    u = server::parse_http_url("HTTP://example.org");
    REQUIRE(u);
    CHECK((u->host == "example.org" && u->port == "80" && u->target == "/"));
    u = server::parse_http_url("http://[::1]:81/a?b=c");
    REQUIRE(u);
    CHECK((u->host == "::1" && u->port == "81" && u->target == "/a?b=c"));
    for (const char* bad : {"", "https://x/", "ftp://x", "http://", "http://:80/", "http://x:0/", "http://x:99999/",
                            "http://u@x/", "http://x/a#b", "http://x:/", "x:80"}) {
        CAPTURE(bad);
        CHECK(!server::parse_http_url(bad));
    }
}
