#pragma once

#include "core/exposition.hpp"
#include "server/middleware.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace storage {
class Storage;
}

namespace server {

class AuditHub;
using core::Exposition;

/// The standard `process_*` figures of the Prometheus client libraries, for this process.
struct ProcessFigures {
    double cpu_seconds = 0;         ///< user + system
    double start_time_seconds = 0;  ///< Unix time the process started
    std::int64_t resident_bytes = 0;
    std::int64_t virtual_bytes = 0;
    std::int64_t open_fds = 0;
    std::int64_t max_fds = 0;  ///< the soft RLIMIT_NOFILE
};

/// Parses the text of /proc/self/stat (`pid (comm) state ...`; comm may hold spaces and
/// parentheses, so fields are counted after the last ')'). nullopt when it has fewer fields
/// than needed or a field is not a number. Pure: the fuzz target calls it.
std::optional<ProcessFigures> parse_proc_stat(std::string_view stat, long ticks_per_second, long page_size,
                                              double boot_time_seconds);

/// Reads this process's figures from /proc (Linux). A figure that cannot be read stays 0.
ProcessFigures read_process_figures();

/// Writes the process families and `metrics_server_build_info{version="..."} 1`.
void write_process_metrics(Exposition& out, const ProcessFigures& p, std::string_view version);

/// Responses the daemon gives without a route, by the limit that refused the request.
enum class Rejection : std::uint8_t {
    malformed,        ///< 400: HTTP framing the parser refused
    timeout,          ///< 408: header or body deadline
    body_too_large,   ///< 413
    uri_too_long,     ///< 414
    header_too_large, ///< 431
    overloaded,       ///< 503: connection limit or storage deadline
    count_
};

/// The HTTP figures of the daemon: requests by endpoint and status code, their durations as a
/// histogram per endpoint, bytes in and out, connections, rejections by limit.
///
/// Each thread counts into a block of its own (cache-line aligned; plain load and store of
/// relaxed atomics, no read-modify-write, no lock) found through a thread_local; a scrape sums
/// the blocks. So counting writes no line another thread writes, and costs a few plain adds.
/// A sum may miss the increments in flight while it runs, never tear one.
class HttpStats {
public:
    /// `endpoints`: the label value of each endpoint index (e.g. "/update/{kind}/{name}/{value}");
    /// request() clamps an index past the end to the last one.
    explicit HttpStats(std::vector<std::string> endpoints);
    ~HttpStats();
    HttpStats(const HttpStats&) = delete;
    HttpStats& operator=(const HttpStats&) = delete;

    void request(std::size_t endpoint, int status, std::uint64_t bytes_in, std::uint64_t bytes_out,
                 std::chrono::nanoseconds took) noexcept;
    void connection_opened() noexcept;
    void connection_closed() noexcept;
    void connection_refused() noexcept;
    void rejected(Rejection why) noexcept;
    /// `status` of an answer no route gave (the listener's framing, size and timeout errors).
    void rejected(int status) noexcept;
    /// Metric updates applied (a batch counts its elements).
    void updates(std::uint64_t n) noexcept;

    /// The families, summed over every thread's block.
    void write(Exposition& out) const;

    /// Sums for tests: requests of `endpoint` answered with `status`.
    std::uint64_t requests(std::size_t endpoint, int status) const;
    std::uint64_t open_connections() const;

    /// Upper bounds of the duration histogram, in seconds (then +Inf).
    static constexpr std::array<double, 14> bucket_bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                          0.025,  0.05,    0.1,    0.25,  0.5,    1,     5};
    /// The status codes counted one by one; any other is counted as "other".
    static constexpr std::array<int, 18> status_codes{200, 400, 401, 403, 404, 405, 408, 411, 413,
                                                      414, 415, 429, 431, 500, 501, 503, 505, 507};

private:
    struct Block;
    Block& mine() noexcept;
    template <class F>
    void each_block(F&& f) const;

    std::vector<std::string> endpoints_;
    mutable std::mutex blocks_mutex_;  ///< guards blocks_ (taken when a thread first counts, and by scrapes)
    std::vector<std::unique_ptr<Block>> blocks_;
    const std::uint64_t id_;  ///< tells a thread's cached block of this object from one of a destroyed one
};

/// Counts every request into HttpStats: outermost in the chain, so that it sees the final
/// status (exceptions already turned into 500s) and the body bytes as sent.
class CountRequests final : public Middleware {
public:
    explicit CountRequests(HttpStats& stats) noexcept : stats_(stats) {}
    Flow before(Exchange& ex) const override;
    void after(Exchange& ex) const override;

private:
    HttpStats& stats_;
};

/// The label of each endpoint of server/endpoints.hpp in request counts, by index, then "other"
/// (unknown paths).
std::vector<std::string> endpoint_labels();
/// The index of `path`'s endpoint in endpoint_labels().
std::size_t endpoint_index(std::string_view path) noexcept;

/// Everything /metrics shows after the stored metrics: the process, the HTTP figures, the
/// storage's and the audit trail's own. The sources outlive it (owned by main).
class SelfMetrics {
public:
    explicit SelfMetrics(std::string version);

    HttpStats& http() noexcept { return http_; }
    void set_sources(const storage::Storage* storage, const AuditHub* audit) noexcept
    {
        storage_ = storage;
        audit_ = audit;
    }

    void write(Exposition& out) const;

private:
    std::string version_;
    HttpStats http_;
    const storage::Storage* storage_ = nullptr;
    const AuditHub* audit_ = nullptr;
};

}  // namespace server
