// Handlers: the seed's internal/handlers benchmarks. Each feeds raw request bytes through the
// parser, middleware chain, router, handler and memory storage to response bytes, with no
// socket. BM_SimdjsonAlone parses the UpdateJSONHandler body with simdjson and nothing else:
// the floor that the whole request is measured against (target: at most 3x).
#include "core/json.hpp"
#include "support/server.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <vector>

namespace {

using bench::OfflineServer;

constexpr std::string_view update_body = R"({"id":"Alloc","type":"gauge","value":123456.789})";

void BM_UpdateHandler(benchmark::State& state)
{
    OfflineServer server;
    const auto raw = bench::http_request("POST", "/update/gauge/Alloc/123456.789");
    server.expect("BM_UpdateHandler", raw);  // the metric exists from here on
    bench::require(server.expect("BM_UpdateHandler", bench::http_request("GET", "/value/gauge/Alloc")).body ==
                       "123456.789",
                   "BM_UpdateHandler", "the update is stored");
    server.expect("BM_UpdateHandler", raw);
    bench::time_requests(state, server, raw);
}
BENCHMARK(BM_UpdateHandler);

void BM_ValueHandler(benchmark::State& state)
{
    OfflineServer server;
    server.expect("BM_ValueHandler", bench::http_request("POST", "/update/gauge/Alloc/123456.789"));
    const auto raw = bench::http_request("GET", "/value/gauge/Alloc");
    bench::require(server.expect("BM_ValueHandler", raw).body == "123456.789", "BM_ValueHandler",
                   "the value is answered");
    bench::time_requests(state, server, raw);
}
BENCHMARK(BM_ValueHandler);

void BM_UpdateJSONHandler(benchmark::State& state)
{
    OfflineServer server;
    const auto raw = bench::http_request("POST", "/update/", update_body, "application/json");
    server.expect("BM_UpdateJSONHandler", raw);  // existing metric from here on
    bench::require(server.expect("BM_UpdateJSONHandler", raw).body.find("123456.789") != std::string_view::npos,
                   "BM_UpdateJSONHandler", "the answer carries the stored value");
    bench::time_requests(state, server, raw);
}
BENCHMARK(BM_UpdateJSONHandler);

void BM_ValueJSONHandler(benchmark::State& state)
{
    OfflineServer server;
    server.expect("BM_ValueJSONHandler", bench::http_request("POST", "/update/", update_body, "application/json"));
    const auto raw = bench::http_request("POST", "/value/", R"({"id":"Alloc","type":"gauge"})", "application/json");
    bench::require(server.expect("BM_ValueJSONHandler", raw).body.find("123456.789") != std::string_view::npos,
                   "BM_ValueJSONHandler", "the answer carries the value");
    bench::time_requests(state, server, raw);
}
BENCHMARK(BM_ValueJSONHandler);

/// /updates/ with N metrics (existing after the first request); items are metrics.
void BM_UpdateBatchHandler(benchmark::State& state)
{
    const auto n = static_cast<std::size_t>(state.range(0));
    OfflineServer server;
    const auto raw = bench::http_request("POST", "/updates/", bench::batch_json(n), "application/json");
    server.expect("BM_UpdateBatchHandler", raw);
    bench::require(server.expect("BM_UpdateBatchHandler", raw).body.starts_with("["), "BM_UpdateBatchHandler",
                   "the answer lists the stored metrics");
    bench::time_requests(state, server, raw);
    state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_UpdateBatchHandler)->Arg(10)->Arg(100)->Arg(1000);

/// GET / with N stored metrics (an agent reports about 30); items are requests.
void BM_RootHandler(benchmark::State& state)
{
    const auto n = static_cast<std::size_t>(state.range(0));
    OfflineServer server;
    server.expect("BM_RootHandler", bench::http_request("POST", "/updates/", bench::batch_json(n), "application/json"));
    const auto raw = bench::http_request("GET", "/");
    bench::require(server.expect("BM_RootHandler", raw).body.find("batch" + std::to_string(n)) != std::string_view::npos,
                   "BM_RootHandler", "the page lists the metrics");
    bench::time_requests(state, server, raw);
}
BENCHMARK(BM_RootHandler)->Arg(30)->Arg(1000);

/// URL updates spread over 10,000 stored metrics: lookups stay flat as the store grows.
void BM_HandlerWithManyMetrics(benchmark::State& state)
{
    constexpr std::size_t stored = 10'000;
    OfflineServer server;
    for (std::size_t i = 0; i < stored; i += 1000)
        server.expect("BM_HandlerWithManyMetrics", bench::http_request("POST", "/updates/",
                                                                       bench::batch_json(1000, fmt::format("m{}_", i)),
                                                                       "application/json"));
    // batch_json makes odd-numbered names gauges and even-numbered ones counters.
    std::vector<std::string> requests;
    for (std::size_t i = 0; i < 1024; ++i) {
        const std::size_t k = (i * 7919) % stored;  // spread over the whole store
        const std::size_t number = k % 1000 + 1;
        requests.push_back(bench::http_request(
            "POST", fmt::format("/update/{}/m{}_{}/{}", number % 2 == 1 ? "gauge" : "counter", k / 1000 * 1000, number,
                                i % 100)));
    }
    for (const auto& r : requests)
        server.expect("BM_HandlerWithManyMetrics", r);
    bench::require(server.store.map().list().size() == stored, "BM_HandlerWithManyMetrics", "updates hit existing metrics");
    bench::time_requests(state, server, requests);
}
BENCHMARK(BM_HandlerWithManyMetrics);

/// Our JSON codec alone on the UpdateJSONHandler body.
void BM_JSONParsing(benchmark::State& state)
{
    core::JsonCodec codec;
    auto first = codec.parse_metric(update_body);
    bench::require(first && first->id == "Alloc" && first->value == 123456.789, "BM_JSONParsing",
                   "the body parses to the metric");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto m = codec.parse_metric(update_body);
        benchmark::DoNotOptimize(m);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(update_body.size()));
}
BENCHMARK(BM_JSONParsing);

/// simdjson on demand reading the same three fields of the same body, with a reused parser
/// and padded buffer: the floor for BM_UpdateJSONHandler.
void BM_SimdjsonAlone(benchmark::State& state)
{
    simdjson::ondemand::parser parser;
    simdjson::padded_string body{update_body};
    const auto parse = [&](std::string_view& id, std::string_view& type, double& value) {
        simdjson::ondemand::document doc;
        if (parser.iterate(body).get(doc) != simdjson::SUCCESS)
            return false;
        simdjson::ondemand::object object;
        if (doc.get_object().get(object) != simdjson::SUCCESS)
            return false;
        return object["id"].get_string().get(id) == simdjson::SUCCESS &&
               object["type"].get_string().get(type) == simdjson::SUCCESS &&
               object["value"].get_double().get(value) == simdjson::SUCCESS;
    };
    std::string_view id;
    std::string_view type;
    double value = 0;
    bench::require(parse(id, type, value) && id == "Alloc" && type == "gauge" && value == 123456.789,
                   "BM_SimdjsonAlone", "the body parses");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        bool ok = parse(id, type, value);
        benchmark::DoNotOptimize(ok);
        benchmark::DoNotOptimize(value);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(update_body.size()));
}
BENCHMARK(BM_SimdjsonAlone);

}  // namespace

BENCHMARK_MAIN();
