#include "server/middleware.hpp"

#include "codec/gzip.hpp"
#include "http/parser.hpp"
#include "server/config.hpp"
#include "server/offline.hpp"
#include "server/pipeline.hpp"
#include "storage/memory.hpp"
#include "support/run.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

namespace {

using server::Exchange;
using server::Middleware;
using Flow = Middleware::Flow;

/// What a Probe does.
struct Script {
    Flow flow = Flow::next;
    bool throw_after = false;
    bool recovers = false;
};

/// Writes each hook it runs into `trace` ("A>" in, "<A" out, "!A" asked to recover) and does
/// as it is told.
class Probe final : public Middleware {
public:
    Probe(std::string name, std::string& trace, Script script = {})
        : name_(std::move(name)), trace_(trace), script_(script) {}

    Flow before(Exchange&) const override
    {
        trace_ += name_ + ">";
        return script_.flow;
    }
    void after(Exchange&) const override
    {
        trace_ += "<" + name_;
        if (script_.throw_after)
            throw std::runtime_error("after");
    }
    bool recover(Exchange&, const std::exception&) const override
    {
        trace_ += "!" + name_;
        return script_.recovers;
    }

private:
    std::string name_;
    std::string& trace_;
    Script script_;
};

/// A middleware that really suspends around `next`.
class Waiter final : public Middleware {
public:
    explicit Waiter(std::string& trace) : Middleware(true), trace_(trace) {}
    core::awaitable<void> operator()(Exchange& ex, server::Next next) const override
    {
        trace_ += "W>";
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        co_await next(ex);
        trace_ += "<W";
    }

private:
    std::string& trace_;
};

/// The router's place: answers "ok", or throws; as a plain call when `now` says so.
class Answer final : public server::Handler {
public:
    Answer(std::string& trace, bool throws, const bool& now) : trace_(trace), throws_(throws), now_(now) {}
    core::awaitable<void> operator()(Exchange& ex) const override
    {
        answer_now(ex);
        co_return;
    }
    bool answers_now(const http::Request&) const override { return now_; }
    void answer_now(Exchange& ex) const override
    {
        trace_ += "h";
        if (throws_)
            throw std::runtime_error("handler");
        ex.response.text("ok");
    }

private:
    std::string& trace_;
    bool throws_;
    const bool& now_;
};

/// One GET through a chain; `trace` collects what ran. run() sends it twice, through the
/// coroutine chain and then as plain calls (Pipeline::run_now), and checks that both ran the
/// same hooks in the same order with the same answer.
struct Chain {
    std::string trace;
    std::vector<std::unique_ptr<Middleware>> layers;
    bool handler_throws = false;
    bool handler_now = false;
    http::RequestParser parser;
    std::vector<char> wire;
    server::Response response;
    server::Scratch scratch;
    std::unique_ptr<server::Pipeline> pipeline;

    template <class M, class... Args>
    Chain& add(Args&&... args)
    {
        layers.push_back(std::make_unique<M>(std::forward<Args>(args)...));
        return *this;
    }
    Chain& probe(std::string name, Script script = {}) { return add<Probe>(std::move(name), trace, script); }

    /// Once through the pipeline; `now`: the handler answers as a plain call if the chain lets it.
    /// Returns whether the plain path ran.
    bool run_once(bool now)
    {
        if (!pipeline)
            pipeline = std::make_unique<server::Pipeline>(std::move(layers),
                                                          std::make_unique<Answer>(trace, handler_throws, handler_now));
        handler_now = now;
        const std::string_view get = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
        wire.assign(get.begin(), get.end());
        parser.reset();
        REQUIRE(parser.parse(wire) == http::RequestParser::State::done);
        response.clear();
        Exchange ex{parser.request(), parser.request().body, response, scratch, "test"};
        if (pipeline->run_now(ex))
            return true;
        test::run((*pipeline)(ex));
        return false;
    }

    void run()
    {
        const bool plain = run_once(false);  // outside CHECK: an escaping exception must leave run()
        CHECK_FALSE(plain);
        const std::string awaited = trace;
        const int status = response.status;
        trace.clear();
        run_once(true);
        CHECK(trace == awaited);
        CHECK(response.status == status);
        trace = awaited;
    }
};

}  // namespace

TEST_CASE("hook middleware runs in order around the handler")
{
    Chain c;
    c.probe("A").probe("B").run();
    CHECK(c.trace == "A>B>h<B<A");
    CHECK(c.response.status == 200);
    CHECK(c.run_once(true));  // hooks only, and a handler that answers now: no coroutine
}

TEST_CASE("a layer that answers skips the inner layers and its own way out")
{
    Chain c;
    c.probe("A").probe("B", {.flow = Flow::answered}).probe("C").run();
    CHECK(c.trace == "A>B><A");
}

TEST_CASE("an exception goes outward to the first layer that recovers; outer layers go on")
{
    Chain c;
    c.handler_throws = true;
    c.probe("A").probe("G", {.recovers = true}).probe("B").run();
    CHECK(c.trace == "A>G>B>h!B!G<A");

    SUBCASE("so does one thrown on the way out") {
        Chain d;
        d.probe("G", {.recovers = true}).probe("B", {.throw_after = true}).probe("C").run();
        CHECK(d.trace == "G>B>C>h<C<B!G");
    }
}

TEST_CASE("an exception nobody recovers from leaves the pipeline")
{
    Chain c;
    c.handler_throws = true;
    c.probe("A");
    CHECK_THROWS_AS(c.run(), std::runtime_error);
    CHECK(c.trace == "A>h!A");
    c.trace.clear();
    CHECK_THROWS_AS(c.run_once(true), std::runtime_error);  // the plain path lets it out too
    CHECK(c.trace == "A>h!A");
}

TEST_CASE("a middleware that waits sits between hooks")
{
    Chain c;
    c.probe("A").add<Waiter>(c.trace);
    c.probe("B").run();
    CHECK(c.trace == "A>W>B>h<B<W<A");
    c.trace.clear();
    CHECK_FALSE(c.run_once(true));  // a layer that waits: the coroutine chain, whatever the handler says
    CHECK(c.trace == "A>W>B>h<B<W<A");

    SUBCASE("and exceptions cross it") {
        Chain d;
        d.handler_throws = true;
        d.probe("G", {.recovers = true}).add<Waiter>(d.trace);
        d.probe("B").run();
        CHECK(d.trace == "G>W>B>h!B!G");
    }
}

TEST_CASE("a hook middleware called as a coroutine runs its hooks around next")
{
    std::string trace;
    Probe a{"A", trace};
    const bool now = false;
    Answer end{trace, false, now};
    http::RequestParser parser;
    std::vector<char> wire{'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P', '/', '1', '.', '0', '\r', '\n', '\r', '\n'};
    REQUIRE(parser.parse(wire) == http::RequestParser::State::done);
    server::Response response;
    server::Scratch scratch;
    Exchange ex{parser.request(), parser.request().body, response, scratch, "test"};
    test::run(a(ex, server::Next{{}, end}));
    CHECK(trace == "A>h<A");
}

TEST_CASE("GuardExceptions turns an escaped exception into a 500")
{
    Chain c;
    c.handler_throws = true;
    c.add<server::GuardExceptions>();
    c.probe("B").run();
    CHECK(c.trace == "B>h!B");
    CHECK(c.response.status == 500);
    CHECK(std::string_view{c.response.body.data(), c.response.body.size()} == "internal error\n");
}

namespace {

server::Config quiet(std::string key = {})
{
    server::Config c;
    c.access_log = false;
    c.key = std::move(key);
    return c;
}

struct Server {
    explicit Server(std::string key = {}) : config(quiet(std::move(key))) {}
    storage::MemoryStorage store;
    server::Config config;
    std::unique_ptr<server::Pipeline> pipeline = server::make_pipeline(config, store);
    server::OfflineConnection conn{*pipeline};
};

bool has(std::string_view head, std::string_view line) { return head.find(line) != std::string_view::npos; }

}  // namespace

TEST_CASE("a gzip body that does not inflate is refused, and the refusal is not compressed")
{
    Server s;
    const auto answer = s.conn.handle("POST /update/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                      "Content-Encoding: gzip\r\nAccept-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope");
    CHECK(answer.status == 400);
    CHECK(!has(answer.head, "Content-Encoding"));
}

TEST_CASE("a gzip request is inflated and its answer compressed")
{
    Server s;
    codec::Gzip gz;
    std::string body;
    gz.compress(R"({"id":"g","type":"gauge","value":1.5})", body);
    const auto answer = s.conn.handle("POST /update/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                      "Content-Encoding: gzip\r\nAccept-Encoding: gzip\r\nContent-Length: " +
                                      std::to_string(body.size()) + "\r\n\r\n" + body);
    CHECK(answer.status == 200);
    CHECK(has(answer.head, "\r\nContent-Encoding: gzip\r\nVary: Accept-Encoding\r\n"));
    std::string plain;
    REQUIRE(gz.decompress(answer.body, plain, 1024));
    CHECK(plain == R"({"id":"g","type":"gauge","value":1.5})");
}

TEST_CASE("a keyed server signs the answers of inner middleware too")
{
    Server s{"k"};
    const auto answer =
        s.conn.handle("POST /update/ HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}");
    CHECK(answer.status == 415);
    CHECK(has(answer.head, "\r\nHashSHA256: "));
}
