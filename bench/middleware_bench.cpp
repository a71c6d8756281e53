// Middleware: the seed's internal/middleware benchmarks, each a valid request through the
// whole offline server with the middleware under test switched on by the configuration (the
// way metrics-server builds its chain), so the figures include what the feature really costs.
#include "codec/gzip.hpp"
#include "codec/hmac.hpp"
#include "support/server.hpp"

namespace {

using bench::OfflineServer;

constexpr std::string_view key = "benchmark-secret-key";
constexpr std::string_view update_body = R"({"id":"Alloc","type":"gauge","value":123456.789})";

std::string gzip(std::string_view in)
{
    codec::Gzip gz;
    std::string out;
    gz.compress(in, out);
    return out;
}

std::string hash_header(std::string_view body)
{
    return "HashSHA256: " + std::string{codec::view(codec::hmac_sha256_hex(key, body))} + "\r\n";
}

server::Config keyed_config()
{
    auto c = OfflineServer::quiet_config();
    c.key = key;
    return c;
}

bool has_header(std::string_view head, std::string_view line)
{
    return head.find(line) != std::string_view::npos;
}

/// One update, gzip'd request and gzip'd answer.
void BM_GzipMiddleware(benchmark::State& state)
{
    OfflineServer server;
    const auto raw = bench::http_request("POST", "/update/", gzip(update_body), "application/json",
                                         "Content-Encoding: gzip\r\nAccept-Encoding: gzip\r\n");
    const auto answer = server.expect("BM_GzipMiddleware", raw);
    bench::require(has_header(answer.head, "Content-Encoding: gzip"), "BM_GzipMiddleware", "the answer is gzip'd");
    bench::time_requests(state, server, raw);
}
BENCHMARK(BM_GzipMiddleware);

/// An agent-sized report and larger: /updates/ with N metrics, gzip both ways; bytes are the
/// uncompressed JSON.
void BM_GzipMiddlewareLargePayload(benchmark::State& state)
{
    OfflineServer server;
    const auto json = bench::batch_json(static_cast<std::size_t>(state.range(0)));
    const auto raw = bench::http_request("POST", "/updates/", gzip(json), "application/json",
                                         "Content-Encoding: gzip\r\nAccept-Encoding: gzip\r\n");
    const auto answer = server.expect("BM_GzipMiddlewareLargePayload", raw);
    bench::require(has_header(answer.head, "Content-Encoding: gzip"), "BM_GzipMiddlewareLargePayload",
                   "the answer is gzip'd");
    bench::time_requests(state, server, raw);
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(json.size()));
}
BENCHMARK(BM_GzipMiddlewareLargePayload)->Arg(100)->Arg(1000);

/// A signed request with a valid HashSHA256 (checked) and a signed answer.
void BM_HashMiddleware(benchmark::State& state)
{
    OfflineServer server{keyed_config()};
    const auto raw = bench::http_request("POST", "/update/", update_body, "application/json", hash_header(update_body));
    const auto answer = server.expect("BM_HashMiddleware", raw);
    bench::require(has_header(answer.head, "HashSHA256: "), "BM_HashMiddleware", "the answer is signed");
    // The check is real: the same request with a wrong digest is refused.
    auto forged = raw;
    forged[forged.find("HashSHA256: ") + 12] ^= 1;
    server.expect("BM_HashMiddleware", forged, 400);
    bench::time_requests(state, server, raw);
}
BENCHMARK(BM_HashMiddleware);

/// A bodiless GET whose answer is signed.
void BM_ResponseHashMiddleware(benchmark::State& state)
{
    OfflineServer server{keyed_config()};
    server.expect("BM_ResponseHashMiddleware", bench::http_request("POST", "/update/gauge/Alloc/1.5"));
    const auto raw = bench::http_request("GET", "/value/gauge/Alloc");
    const auto answer = server.expect("BM_ResponseHashMiddleware", raw);
    const auto digest = codec::hmac_sha256_hex(key, answer.body);
    bench::require(has_header(answer.head, "HashSHA256: " + std::string{codec::view(digest)}),
                   "BM_ResponseHashMiddleware", "the answer carries the HMAC of its body");
    bench::time_requests(state, server, raw);
}
BENCHMARK(BM_ResponseHashMiddleware);

/// A JSON update whose Content-Type has a parameter (accepted); a wrong type is 415.
void BM_ContentTypeMiddleware(benchmark::State& state)
{
    OfflineServer server;
    server.expect("BM_ContentTypeMiddleware", bench::http_request("POST", "/update/", update_body, "text/plain"), 415);
    const auto raw = bench::http_request("POST", "/update/", update_body, "application/json; charset=utf-8");
    server.expect("BM_ContentTypeMiddleware", raw);
    bench::time_requests(state, server, raw);
}
BENCHMARK(BM_ContentTypeMiddleware);

/// Everything a Go agent's request meets at once: gzip'd, signed over the gzip'd bytes, JSON
/// content type, gzip'd and signed answer. (The access log is left off: it would time stderr.)
void BM_MiddlewareChain(benchmark::State& state)
{
    OfflineServer server{keyed_config()};
    const auto body = gzip(bench::batch_json(30));
    const auto raw = bench::http_request("POST", "/updates/", body, "application/json",
                                         "Content-Encoding: gzip\r\nAccept-Encoding: gzip\r\n" + hash_header(body));
    const auto answer = server.expect("BM_MiddlewareChain", raw);
    bench::require(has_header(answer.head, "Content-Encoding: gzip") && has_header(answer.head, "HashSHA256: "),
                   "BM_MiddlewareChain", "the answer is gzip'd and signed");
    bench::time_requests(state, server, raw);
}
BENCHMARK(BM_MiddlewareChain);

/// /update/{kind}/{name}/{value} of an existing gauge without the self-metrics: the baseline of
/// BM_SelfMetricsCounting.
void BM_UpdateURLUncounted(benchmark::State& state)
{
    OfflineServer server;
    const auto raw = bench::http_request("POST", "/update/gauge/Alloc/123456.789");
    server.expect("BM_UpdateURLUncounted", raw);
    bench::time_requests(state, server, raw);
}
BENCHMARK(BM_UpdateURLUncounted);

/// The same request counted as the daemon counts it (CountRequests outermost: endpoint, status,
/// duration histogram, bytes; the router's updates applied): what the self-metrics cost.
void BM_SelfMetricsCounting(benchmark::State& state)
{
    server::SelfMetrics self{"bench"};
    OfflineServer server{OfflineServer::quiet_config(), &self};
    const auto raw = bench::http_request("POST", "/update/gauge/Alloc/123456.789");
    server.expect("BM_SelfMetricsCounting", raw);
    const std::size_t endpoint = server::endpoint_index("/update/gauge/Alloc/123456.789");
    const std::uint64_t before = self.http().requests(endpoint, 200);
    bench::time_requests(state, server, raw);
    bench::require(self.http().requests(endpoint, 200) > before, "BM_SelfMetricsCounting", "requests are counted");
}
BENCHMARK(BM_SelfMetricsCounting);

}  // namespace

BENCHMARK_MAIN();
