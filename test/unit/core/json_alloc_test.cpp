// Proves the JSON hot path allocation-free in steady state: this binary replaces the global
// operator new with a counting one (harmless for the other tests in it).
#include "core/json.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

namespace {

std::atomic<long> allocations{0};

}  // namespace

// Every non-aligned form is replaced, so that no pointer from ours reaches a sanitizer's
// delete or the other way round (libsimdjson uses the nothrow forms).
void* operator new(std::size_t n)
{
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n))
        return p;
    throw std::bad_alloc{};
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept
{
    allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

TEST_CASE("parsing and writing metrics does not allocate once buffers have grown")
{
    core::JsonCodec codec;
    std::vector<core::Metric> batch;
    fmt::memory_buffer out;
    const std::string metric = R"({"id":"Alloc","type":"gauge","value":123456.7})";
    const std::string query = R"({"id":"PollCount","type":"counter"})";
    std::string big_batch = "[";
    for (int i = 0; i < 200; ++i)
        big_batch += R"({"id":"m)" + std::to_string(i) + R"(","type":"counter","delta":)" + std::to_string(i) + "},";
    big_batch.back() = ']';

    auto round = [&] {
        bool ok = true;
        ok = ok && codec.parse_metric(metric).has_value();
        ok = ok && codec.parse_query(query).has_value();
        ok = ok && codec.parse_batch(big_batch, batch, 1000).has_value();
        ok = ok && codec.parse_metric(R"({"id":"x","type":"gauge","value":"bad"})").error() == core::Errc::bad_value;
        out.clear();
        core::write_json(out, std::span<const core::Metric>{batch});
        return ok;
    };
    REQUIRE(round());  // warm-up: buffers grow to size
    const long before = allocations.load();
    for (int i = 0; i < 10; ++i)
        REQUIRE(round());
    CHECK(allocations.load() - before == 0);
    CHECK(batch.size() == 200);
}
