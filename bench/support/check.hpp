#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace bench {

/// Ends the benchmark binary with a message: a benchmark must time the path it names, so a
/// setup or a first iteration that fails is a bug in the benchmark (the Go suite timed error
/// paths for months because it never looked).
[[noreturn]] inline void fail(std::string_view benchmark, std::string_view what)
{
    std::fprintf(stderr, "%.*s: precondition failed: %.*s\n", static_cast<int>(benchmark.size()), benchmark.data(),
                 static_cast<int>(what.size()), what.data());
    std::abort();
}

/// Fails unless `ok`. METRICS_BENCH_FAIL=TEXT fails every precondition of the benchmarks whose
/// name contains TEXT: the profile tools' own test (test/integration/test_tools.py) breaks one
/// component on purpose to see the others saved.
inline void require(bool ok, std::string_view benchmark, std::string_view what)
{
    static const char* const forced = std::getenv("METRICS_BENCH_FAIL");
    if (!ok || (forced && *forced && benchmark.find(forced) != std::string_view::npos))
        fail(benchmark, what);
}

/// A raw HTTP/1.1 keep-alive request as a client puts it on the wire.
inline std::string http_request(std::string_view method, std::string_view target, std::string_view body = {},
                                std::string_view content_type = {}, std::string_view extra_headers = {})
{
    std::string r;
    r.reserve(128 + body.size() + extra_headers.size());
    r.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: localhost\r\n");
    if (!content_type.empty())
        r.append("Content-Type: ").append(content_type).append("\r\n");
    r.append(extra_headers);
    if (!body.empty() || method == "POST")
        r.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    r.append("\r\n").append(body);
    return r;
}

}  // namespace bench
