#include "server/self_metrics.hpp"

#include "server/audit.hpp"
#include "server/endpoints.hpp"
#include "storage/storage.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <limits>
#include <iterator>
#include <sstream>
#include <thread>

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

namespace server {
namespace {

using Counter = std::atomic<std::uint64_t>;

/// Only the owning thread writes a block: a plain load and store (no locked instruction) is
/// enough, and a concurrent reader sees the old or the new value, never a torn one.
void bump(Counter& c, std::uint64_t n = 1) noexcept
{
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

std::uint64_t next_stats_id() noexcept
{
    static std::atomic<std::uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
}

std::size_t status_index(int status) noexcept
{
    const auto& codes = HttpStats::status_codes;
    const auto it = std::find(codes.begin(), codes.end(), status);
    return static_cast<std::size_t>(it - codes.begin());  // codes.size(): "other"
}

std::string_view rejection_limit(Rejection r) noexcept
{
    switch (r) {
    case Rejection::malformed: return "framing";
    case Rejection::timeout: return "timeout";
    case Rejection::body_too_large: return "body";
    case Rejection::uri_too_long: return "uri";
    case Rejection::header_too_large: return "header";
    case Rejection::overloaded: return "overload";
    case Rejection::count_: break;
    }
    return "other";
}

std::string_view rejection_code(Rejection r) noexcept
{
    switch (r) {
    case Rejection::malformed: return "400";
    case Rejection::timeout: return "408";
    case Rejection::body_too_large: return "413";
    case Rejection::uri_too_long: return "414";
    case Rejection::header_too_large: return "431";
    case Rejection::overloaded: return "503";
    case Rejection::count_: break;
    }
    return "0";
}

std::string read_small_file(const char* path)
{
    std::ifstream f{path};
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

/// btime from /proc/stat: the boot time in Unix seconds, 0 when unknown.
double boot_time_seconds()
{
    std::istringstream lines{read_small_file("/proc/stat")};
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("btime ", 0) == 0)
            return std::strtod(line.c_str() + 6, nullptr);
    return 0;
}

std::int64_t count_open_fds()
{
    DIR* d = ::opendir("/proc/self/fd");
    if (d == nullptr)
        return 0;
    std::int64_t n = 0;
    while (const dirent* e = ::readdir(d))
        if (e->d_name[0] != '.')
            ++n;
    ::closedir(d);
    return n - 1;  // the descriptor opendir itself holds
}

}  // namespace

std::optional<ProcessFigures> parse_proc_stat(std::string_view stat, long ticks_per_second, long page_size,
                                              double boot_time_seconds)
{
    const auto close = stat.rfind(')');
    if (close == std::string_view::npos || ticks_per_second <= 0)
        return std::nullopt;
    // Fields after comm, numbered as in proc(5): 3 state, ... 14 utime, 15 stime, 22 starttime,
    // 23 vsize, 24 rss.
    std::string_view rest = stat.substr(close + 1);
    std::array<std::uint64_t, 25> field{};
    for (int n = 3; n <= 24; ++n) {
        while (!rest.empty() && rest.front() == ' ')
            rest.remove_prefix(1);
        const auto end = std::min(rest.find(' '), rest.size());
        const std::string_view text = rest.substr(0, end);
        rest.remove_prefix(end);
        if (text.empty())
            return std::nullopt;
        if (n == 3)
            continue;  // the state letter
        if (text.front() == '-') {  // a few fields (priority, nice) may be negative: not ours
            field[static_cast<std::size_t>(n)] = 0;
            continue;
        }
        const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), field[static_cast<std::size_t>(n)]);
        if (ec != std::errc{} || ptr != text.data() + text.size())
            return std::nullopt;
    }
    const auto ticks = static_cast<double>(ticks_per_second);
    ProcessFigures p;
    p.cpu_seconds = static_cast<double>(field[14] + field[15]) / ticks;
    p.start_time_seconds = boot_time_seconds + static_cast<double>(field[22]) / ticks;
    // Clamped rather than trusted: the text is read as given (the fuzz target feeds any).
    constexpr auto int64_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    const auto page = static_cast<std::uint64_t>(std::max(page_size, 1L));
    p.virtual_bytes = static_cast<std::int64_t>(std::min(field[23], int64_max));
    p.resident_bytes = static_cast<std::int64_t>(std::min(field[24], int64_max / page) * page);
    return p;
}

ProcessFigures read_process_figures()
{
    ProcessFigures p = parse_proc_stat(read_small_file("/proc/self/stat"), ::sysconf(_SC_CLK_TCK),
                                       ::sysconf(_SC_PAGESIZE), boot_time_seconds())
                           .value_or(ProcessFigures{});
    p.open_fds = count_open_fds();
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0)
        p.max_fds = limit.rlim_cur == RLIM_INFINITY ? -1 : static_cast<std::int64_t>(limit.rlim_cur);
    return p;
}

void write_process_metrics(Exposition& out, const ProcessFigures& p, std::string_view version)
{
    out.counter_family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
    out.sample("process_cpu_seconds_total", {}, p.cpu_seconds);
    out.gauge_family("process_resident_memory_bytes", "Resident memory size in bytes.");
    out.sample("process_resident_memory_bytes", {}, p.resident_bytes);
    out.gauge_family("process_virtual_memory_bytes", "Virtual memory size in bytes.");
    out.sample("process_virtual_memory_bytes", {}, p.virtual_bytes);
    out.gauge_family("process_open_fds", "Number of open file descriptors.");
    out.sample("process_open_fds", {}, p.open_fds);
    out.gauge_family("process_max_fds", "Maximum number of open file descriptors.");
    out.sample("process_max_fds", {}, p.max_fds);
    out.gauge_family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
    out.sample("process_start_time_seconds", {}, p.start_time_seconds);
    out.gauge_family("metrics_server_build_info", "A metric with a constant 1, labelled with the build's version.");
    out.sample("metrics_server_build_info", {{"version", version}}, std::int64_t{1});
}

struct alignas(64) HttpStats::Block {
    Block(std::size_t endpoint_count, std::thread::id thread)
        : owner(thread),
          requests(endpoint_count * (status_codes.size() + 1)),
          buckets(endpoint_count * (bucket_bounds.size() + 1)),
          duration_ns(endpoint_count)
    {
    }

    std::thread::id owner;
    std::vector<Counter> requests;     ///< [endpoint][status index]
    std::vector<Counter> buckets;      ///< [endpoint][bucket]: not cumulative (summed when written)
    std::vector<Counter> duration_ns;  ///< [endpoint]
    Counter bytes_in{0};
    Counter bytes_out{0};
    Counter opened{0};
    Counter closed{0};
    Counter refused{0};
    Counter updates{0};
    std::array<Counter, static_cast<std::size_t>(Rejection::count_)> rejections{};
};

HttpStats::HttpStats(std::vector<std::string> labels) : endpoints_(std::move(labels)), id_(next_stats_id())
{
    if (endpoints_.empty())
        endpoints_.emplace_back("other");
}

HttpStats::~HttpStats() = default;

HttpStats::Block& HttpStats::mine() noexcept
{
    struct Cache {
        std::uint64_t id = 0;
        Block* block = nullptr;
    };
    thread_local Cache cache;
    if (cache.id == id_)
        return *cache.block;
    std::lock_guard lock{blocks_mutex_};
    const auto self = std::this_thread::get_id();
    auto it = std::find_if(blocks_.begin(), blocks_.end(), [&](const auto& b) { return b->owner == self; });
    Block* block = nullptr;
    if (it != blocks_.end()) {
        block = it->get();
    } else {
        // One block per thread for the object's life: a server's threads live as long as it.
        blocks_.push_back(std::make_unique<Block>(endpoints_.size(), self));
        block = blocks_.back().get();
    }
    cache = {id_, block};
    return *block;
}

template <class F>
void HttpStats::each_block(F&& f) const
{
    std::lock_guard lock{blocks_mutex_};
    for (const auto& b : blocks_)
        f(*b);
}

void HttpStats::request(std::size_t endpoint, int status, std::uint64_t bytes_in, std::uint64_t bytes_out,
                        std::chrono::nanoseconds took) noexcept
{
    endpoint = std::min(endpoint, endpoints_.size() - 1);
    Block& b = mine();
    bump(b.requests[endpoint * (status_codes.size() + 1) + status_index(status)]);
    const double seconds = std::chrono::duration<double>(took).count();
    const auto bucket = static_cast<std::size_t>(
        std::lower_bound(bucket_bounds.begin(), bucket_bounds.end(), seconds) - bucket_bounds.begin());
    bump(b.buckets[endpoint * (bucket_bounds.size() + 1) + bucket]);
    bump(b.duration_ns[endpoint], static_cast<std::uint64_t>(std::max<std::int64_t>(took.count(), 0)));
    bump(b.bytes_in, bytes_in);
    bump(b.bytes_out, bytes_out);
}

void HttpStats::connection_opened() noexcept { bump(mine().opened); }
void HttpStats::connection_closed() noexcept { bump(mine().closed); }
void HttpStats::connection_refused() noexcept { bump(mine().refused); }
void HttpStats::rejected(Rejection why) noexcept { bump(mine().rejections[static_cast<std::size_t>(why)]); }
void HttpStats::updates(std::uint64_t n) noexcept { bump(mine().updates, n); }

void HttpStats::rejected(int status) noexcept
{
    switch (status) {
    case 400: return rejected(Rejection::malformed);
    case 408: return rejected(Rejection::timeout);
    case 413: return rejected(Rejection::body_too_large);
    case 414: return rejected(Rejection::uri_too_long);
    case 431: return rejected(Rejection::header_too_large);
    case 503: return rejected(Rejection::overloaded);
    default: return;
    }
}

std::uint64_t HttpStats::requests(std::size_t endpoint, int status) const
{
    std::uint64_t n = 0;
    each_block([&](const Block& b) {
        n += b.requests[endpoint * (status_codes.size() + 1) + status_index(status)].load(std::memory_order_relaxed);
    });
    return n;
}

std::uint64_t HttpStats::open_connections() const
{
    std::uint64_t opened = 0;
    std::uint64_t closed = 0;
    each_block([&](const Block& b) {
        opened += b.opened.load(std::memory_order_relaxed);
        closed += b.closed.load(std::memory_order_relaxed);
    });
    return opened >= closed ? opened - closed : 0;
}

void HttpStats::write(Exposition& out) const
{
    const std::size_t statuses = status_codes.size() + 1;
    const std::size_t buckets = bucket_bounds.size() + 1;
    std::vector<std::uint64_t> requests(endpoints_.size() * statuses);
    std::vector<std::uint64_t> histogram(endpoints_.size() * buckets);
    std::vector<std::uint64_t> duration_ns(endpoints_.size());
    std::uint64_t bytes_in = 0, bytes_out = 0, opened = 0, closed = 0, refused = 0, updates = 0;
    std::array<std::uint64_t, static_cast<std::size_t>(Rejection::count_)> rejections{};
    auto add = [](std::vector<std::uint64_t>& to, const std::vector<Counter>& from) {
        for (std::size_t i = 0; i < to.size(); ++i)
            to[i] += from[i].load(std::memory_order_relaxed);
    };
    each_block([&](const Block& b) {
        add(requests, b.requests);
        add(histogram, b.buckets);
        add(duration_ns, b.duration_ns);
        bytes_in += b.bytes_in.load(std::memory_order_relaxed);
        bytes_out += b.bytes_out.load(std::memory_order_relaxed);
        opened += b.opened.load(std::memory_order_relaxed);
        closed += b.closed.load(std::memory_order_relaxed);
        refused += b.refused.load(std::memory_order_relaxed);
        updates += b.updates.load(std::memory_order_relaxed);
        for (std::size_t i = 0; i < rejections.size(); ++i)
            rejections[i] += b.rejections[i].load(std::memory_order_relaxed);
    });

    out.counter_family("metrics_server_http_requests_total", "HTTP requests answered, by endpoint and status code.");
    for (std::size_t e = 0; e < endpoints_.size(); ++e)
        for (std::size_t s = 0; s < statuses; ++s)
            if (const std::uint64_t n = requests[e * statuses + s]; n > 0) {
                const std::string code = s < status_codes.size() ? std::to_string(status_codes[s]) : "other";
                out.sample("metrics_server_http_requests_total", {{"endpoint", endpoints_[e]}, {"code", code}}, n);
            }

    out.histogram_family("metrics_server_http_request_duration_seconds",
                         "Time from a request's first byte parsed to its response queued, by endpoint.");
    for (std::size_t e = 0; e < endpoints_.size(); ++e) {
        std::uint64_t cumulative = 0;
        for (std::size_t k = 0; k < buckets; ++k) {
            cumulative += histogram[e * buckets + k];
            fmt::memory_buffer le;
            if (k < bucket_bounds.size())
                Exposition::write_double(le, bucket_bounds[k]);
            else
                le.append(std::string_view{"+Inf"});
            out.sample("metrics_server_http_request_duration_seconds_bucket",
                       {{"endpoint", endpoints_[e]}, {"le", std::string_view{le.data(), le.size()}}}, cumulative);
        }
        out.sample("metrics_server_http_request_duration_seconds_sum", {{"endpoint", endpoints_[e]}},
                   static_cast<double>(duration_ns[e]) / 1e9);
        out.sample("metrics_server_http_request_duration_seconds_count", {{"endpoint", endpoints_[e]}}, cumulative);
    }

    out.counter_family("metrics_server_http_request_bytes_total", "Request body bytes received, as sent.");
    out.sample("metrics_server_http_request_bytes_total", {}, bytes_in);
    out.counter_family("metrics_server_http_response_bytes_total", "Response body bytes sent, as sent.");
    out.sample("metrics_server_http_response_bytes_total", {}, bytes_out);
    out.gauge_family("metrics_server_connections_open", "Client connections open now.");
    out.sample("metrics_server_connections_open", {}, opened >= closed ? opened - closed : 0);
    out.counter_family("metrics_server_connections_total", "Client connections accepted.");
    out.sample("metrics_server_connections_total", {}, opened);
    out.counter_family("metrics_server_connections_refused_total", "Connections refused at the connection limit.");
    out.sample("metrics_server_connections_refused_total", {}, refused);
    out.counter_family("metrics_server_updates_applied_total", "Metric updates applied (a batch counts its elements).");
    out.sample("metrics_server_updates_applied_total", {}, updates);
    out.counter_family("metrics_server_http_rejections_total",
                       "Requests answered by a limit before any route ran, by limit and status code.");
    for (std::size_t i = 0; i < rejections.size(); ++i) {
        const auto r = static_cast<Rejection>(i);
        out.sample("metrics_server_http_rejections_total", {{"limit", rejection_limit(r)}, {"code", rejection_code(r)}},
                   rejections[i]);
    }
}

Middleware::Flow CountRequests::before(Exchange& ex) const
{
    ex.started = std::chrono::steady_clock::now();
    ex.counted_body = ex.request.body.size();  // before any layer inflates it
    return Flow::next;
}

void CountRequests::after(Exchange& ex) const
{
    if (ex.finished == std::chrono::steady_clock::time_point{})
        ex.finished = std::chrono::steady_clock::now();
    stats_.request(endpoint_index(ex.request.path), ex.response.status, ex.counted_body,
                   ex.response.payload().size(), ex.finished - ex.started);
}

std::vector<std::string> endpoint_labels()
{
    std::vector<std::string> labels;
    for (const Endpoint& e : endpoints) {
        switch (e.route) {
        case Route::update_url: labels.emplace_back("/update/{kind}/{name}/{value}"); break;
        case Route::value_url: labels.emplace_back("/value/{kind}/{name}"); break;
        default: labels.emplace_back(e.path);
        }
    }
    labels.emplace_back("other");
    return labels;
}

std::size_t endpoint_index(std::string_view path) noexcept
{
    const Endpoint* e = find_endpoint(path);
    return e == nullptr ? std::size(endpoints) : static_cast<std::size_t>(e - endpoints);
}

SelfMetrics::SelfMetrics(std::string version) : version_(std::move(version)), http_(endpoint_labels()) {}

void SelfMetrics::write(Exposition& out) const
{
    write_process_metrics(out, read_process_figures(), version_);
    http_.write(out);
    if (storage_ != nullptr)
        storage_->write_self_metrics(out);
    if (audit_ != nullptr) {
        out.counter_family("metrics_server_audit_events_queued_total", "Audit events queued for delivery (per sink).");
        out.sample("metrics_server_audit_events_queued_total", {}, audit_->queued());
        out.counter_family("metrics_server_audit_events_dropped_total", "Audit events dropped: a sink's queue was full.");
        out.sample("metrics_server_audit_events_dropped_total", {}, audit_->dropped());
        out.counter_family("metrics_server_audit_events_failed_total", "Audit events a sink failed to deliver for good.");
        out.sample("metrics_server_audit_events_failed_total", {}, audit_->failed());
        out.counter_family("metrics_server_audit_events_delivered_total", "Audit events delivered.");
        out.sample("metrics_server_audit_events_delivered_total", {}, audit_->delivered());
    }
}

}  // namespace server
