// HMAC-SHA256 (HashSHA256 header): the seed's internal/hash benchmarks; and opening one sealed
// box, the server's per-request cost of -crypto-key.
#include "codec/gzip.hpp"
#include "codec/hmac.hpp"
#include "codec/sealed_box.hpp"
#include "support/allocations.hpp"
#include "support/check.hpp"

#include <benchmark/benchmark.h>

#include <string>

namespace {

constexpr std::string_view key = "benchmark-secret-key";

/// A body the agent really signs: a JSON batch of `n` gauges.
std::string batch_body(std::size_t n)
{
    std::string s = "[";
    for (std::size_t i = 0; i < n; ++i) {
        if (i > 0)
            s += ',';
        s += R"({"id":"Metric)" + std::to_string(i) + R"(","type":"gauge","value":12345.678})";
    }
    s += ']';
    return s;
}

void BM_CalculateHash(benchmark::State& state)
{
    const std::string body = batch_body(30);
    const auto expected = codec::hmac_sha256_hex(key, body);
    bench::require(codec::hmac_sha256_matches(key, body, codec::view(expected)), "BM_CalculateHash",
                   "the digest verifies");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto digest = codec::hmac_sha256_hex(key, body);
        benchmark::DoNotOptimize(digest);
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_CalculateHash);

void BM_VerifyHash(benchmark::State& state)
{
    const std::string body = batch_body(30);
    const auto digest = codec::hmac_sha256_hex(key, body);
    const std::string_view hex = codec::view(digest);
    bench::require(codec::hmac_sha256_matches(key, body, hex), "BM_VerifyHash", "a valid signature matches");
    const auto before = bench::thread_allocations();
    for (auto _ : state)
        benchmark::DoNotOptimize(codec::hmac_sha256_matches(key, body, hex));
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_VerifyHash);

void BM_HashWithDifferentSizes(benchmark::State& state)
{
    const std::string data(static_cast<std::size_t>(state.range(0)), 'x');
    const auto digest = codec::hmac_sha256_hex(key, data);
    bench::require(codec::hmac_sha256_matches(key, data, codec::view(digest)), "BM_HashWithDifferentSizes",
                   "the digest verifies");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto d = codec::hmac_sha256_hex(key, data);
        benchmark::DoNotOptimize(d);
    }
    bench::report_thread_allocations(state, before);
    state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_HashWithDifferentSizes)->RangeMultiplier(8)->Range(64, 1 << 20);

/// Opening the sealed box of one agent report: a gzipped batch of `range(0)` gauges, as the
/// agent sends it (the server's added cost per encrypted request, beside gunzip and parsing).
void BM_OpenSealedBox(benchmark::State& state)
{
    const auto keys = codec::KeyPair::generate();
    codec::Gzip gzip;
    std::string packed;
    gzip.compress(batch_body(static_cast<std::size_t>(state.range(0))), packed);
    std::string box;
    codec::seal(keys.public_key(), packed, box);
    std::string opened;
    bench::require(codec::open(keys, box, opened) && opened == packed, "BM_OpenSealedBox", "the box opens");
    const auto before = bench::thread_allocations();
    for (auto _ : state) {
        auto r = codec::open(keys, box, opened);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(opened.data());
    }
    bench::report_thread_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(box.size()));
}
BENCHMARK(BM_OpenSealedBox)->Arg(30)->Arg(100);

}  // namespace

BENCHMARK_MAIN();
