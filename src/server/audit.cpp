#include "server/audit.hpp"

#include "core/file.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "http/client.hpp"
#include "server/subnet.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>

namespace server {

using namespace std::chrono_literals;

namespace {

/// Printable ASCII without `"` or `\`: the JSON string is the text between quotes.
bool plain_json_text(std::string_view s) noexcept
{
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
}

/// `s` as a JSON string literal; the common plain text without core::write_json_string's buffer.
void append_json_string(std::string& out, std::string_view s)
{
    if (plain_json_text(s)) {
        out.push_back('"');
        out.append(s);
        out.push_back('"');
        return;
    }
    fmt::memory_buffer quoted;
    core::write_json_string(quoted, s);
    out.append(quoted.data(), quoted.size());
}

}  // namespace

void append_audit_id(std::string& ids, std::string_view id)
{
    if (!ids.empty())
        ids.push_back(',');
    append_json_string(ids, id);
}

std::string audit_event(std::int64_t unix_seconds, std::string_view ids, std::string_view ip_address)
{
    std::array<char, 24> ts{};
    const char* ts_end = std::to_chars(ts.data(), ts.data() + ts.size(), unix_seconds).ptr;
    std::string out;
    out.reserve(ids.size() + ip_address.size() + 64);
    out.append("{\"ts\":").append(std::string_view{ts.data(), static_cast<std::size_t>(ts_end - ts.data())});
    out.append(",\"metrics\":[").append(ids).append("],\"ip_address\":");
    append_json_string(out, ip_address);
    out.push_back('}');
    return out;
}

// ---------------------------------------------------------------------------------------------
// Hub

namespace {

/// Whether a rate-limited log line is due (at most one per 10 s per `last`).
bool log_due(std::atomic<std::int64_t>& last) noexcept
{
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count() +
        1;  // never 0, which means "not yet"
    std::int64_t previous = last.load(std::memory_order_relaxed);
    if (previous != 0 && now - previous < 10)
        return false;
    return last.compare_exchange_strong(previous, now, std::memory_order_relaxed);
}

}  // namespace

/// One sink with its bounded queue. The queue is shared with publishers (under `mutex`); the
/// rest is touched only on `strand`.
struct AuditHub::Lane {
    using Event = std::shared_ptr<const std::string>;

    explicit Lane(std::unique_ptr<AuditSink> s) : sink(std::move(s)) {}

    /// Under `mutex`: wakes the delivery coroutine if it waits.
    void wake_locked()
    {
        if (!waiting)
            return;
        waiting = false;
        // On the strand: the coroutine set `waiting` and started its wait in one strand step,
        // so this cancel cannot arrive before the wait it ends.
        asio::post(*strand, [this] { timer->cancel(); });
    }

    /// What the delivery coroutine does next.
    enum class Next : unsigned char {
        deliver,  ///< the events in `taken`
        flush,    ///< the sink's flush is due
        closed,   ///< the queue is closed and empty
    };
    static constexpr std::size_t max_taken = 64;

    /// Moves up to max_taken queued events into `taken`, or says a flush is due once `flush_due`
    /// passes while the queue is empty, or that it has ended. On the strand. A wake-up that
    /// finds nothing (a cancel that raced a timeout) just loops.
    asio::awaitable<Next> pop(std::chrono::steady_clock::time_point flush_due)
    {
        taken.clear();
        for (;;) {
            {
                std::lock_guard lock{mutex};
                if (!items.empty()) {
                    while (!items.empty() && taken.size() < max_taken) {
                        taken.push_back(std::move(items.front()));
                        items.pop_front();
                    }
                    co_return Next::deliver;
                }
                if (closed)
                    co_return Next::closed;
                waiting = true;
            }
            timer->expires_at(flush_due);
            auto [ec] = co_await timer->async_wait(core::use_nothrow_awaitable);
            if (!ec) {  // expired, not woken
                std::lock_guard lock{mutex};
                waiting = false;
                if (items.empty())
                    co_return Next::flush;
            }
        }
    }

    std::unique_ptr<AuditSink> sink;
    std::mutex mutex;
    std::deque<Event> items;
    bool closed = false;
    bool waiting = false;
    bool aborted = false;  // on the strand
    std::vector<Event> taken;             // on the strand: the events being delivered
    std::vector<std::string_view> views;  // ... as the sink sees them
    std::optional<asio::strand<asio::any_io_executor>> strand;
    std::optional<asio::steady_timer> timer;
};

AuditHub::AuditHub(std::size_t capacity) : capacity_(capacity) {}

AuditHub::~AuditHub() = default;

void AuditHub::add(std::unique_ptr<AuditSink> sink) { sinks_.push_back(std::make_unique<Lane>(std::move(sink))); }

void AuditHub::publish(std::string event)
{
    const auto shared = std::make_shared<const std::string>(std::move(event));
    for (auto& lane : sinks_) {
        std::unique_lock lock{lane->mutex};
        if (lane->closed || lane->items.size() >= capacity_) {
            lock.unlock();
            note_drop();
            continue;
        }
        lane->items.push_back(shared);
        lane->wake_locked();
        queued_.fetch_add(1, std::memory_order_relaxed);
    }
}

void AuditHub::note_drop()
{
    const auto n = dropped_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (log_due(drop_logged_at_))
        core::log::warn("audit: queue full, {} events dropped so far", n);
}

void AuditHub::note_failure(const Lane& lane, std::size_t events)
{
    const auto n = failed_.fetch_add(events, std::memory_order_relaxed) + events;
    if (log_due(failure_logged_at_))
        core::log::warn("audit: {} could not take an event ({} failed deliveries so far)", lane.sink->name(), n);
}

void AuditHub::start(asio::any_io_executor executor)
{
    for (auto& lane : sinks_) {
        lane->strand.emplace(asio::make_strand(executor));
        lane->timer.emplace(*lane->strand);
        running_.fetch_add(1);
        asio::co_spawn(*lane->strand, run_lane(*lane), [this, &l = *lane](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& x) {
                    core::log::error("audit: {} stopped: {}", l.sink->name(), x.what());
                }
            }
            running_.fetch_sub(1);
        });
    }
}

asio::awaitable<void> AuditHub::run_lane(Lane& lane)
{
    // No co_await inside conditions: GCC 12 miscompiles some (see router.cpp).
    for (;;) {
        const Lane::Next next = co_await lane.pop(lane.sink->flush_due());
        if (next == Lane::Next::closed)
            break;
        if (next == Lane::Next::flush) {
            co_await lane.sink->flush();
            continue;
        }
        lane.views.clear();
        for (const auto& e : lane.taken)
            lane.views.emplace_back(*e);
        std::size_t delivered = 0;
        if (!lane.aborted)
            delivered = co_await lane.sink->deliver(lane.views);
        delivered_.fetch_add(delivered, std::memory_order_relaxed);
        if (delivered < lane.views.size())
            note_failure(lane, lane.views.size() - delivered);
    }
    co_await lane.sink->flush();
}

void AuditHub::reopen()
{
    for (auto& lane : sinks_) {
        std::lock_guard lock{lane->mutex};
        if (lane->strand)
            asio::post(*lane->strand, [&sink = *lane->sink] { sink.reopen(); });
    }
}

asio::awaitable<void> AuditHub::close(std::chrono::steady_clock::time_point deadline)
{
    for (auto& lane : sinks_) {
        std::lock_guard lock{lane->mutex};
        lane->closed = true;
        lane->wake_locked();
    }
    asio::steady_timer timer{co_await asio::this_coro::executor};
    const auto wait_until = [&](std::chrono::steady_clock::time_point until) -> asio::awaitable<void> {
        while (running_.load() > 0 && std::chrono::steady_clock::now() < until) {
            timer.expires_after(10ms);
            co_await timer.async_wait(core::use_nothrow_awaitable);
        }
    };
    co_await wait_until(deadline);
    if (running_.load() == 0) {
        release_io();
        co_return;
    }
    core::log::warn("audit: shutdown grace over with events undelivered; giving them up");
    for (auto& lane : sinks_)
        asio::post(*lane->strand, [&l = *lane] {
            l.aborted = true;
            l.sink->abort();
        });
    // An aborted delivery ends at once (its socket is closed, its timer cancelled).
    co_await wait_until(std::chrono::steady_clock::now() + 5s);
    if (running_.load() > 0) {
        core::log::error("audit: a sink did not stop");
        co_return;
    }
    release_io();
}

void AuditHub::release_io()
{
    for (auto& lane : sinks_) {
        std::lock_guard lock{lane->mutex};
        lane->timer.reset();
        lane->strand.reset();
    }
}

// ---------------------------------------------------------------------------------------------
// File sink

std::unique_ptr<FileSink> FileSink::open(const std::string& path, std::string& error)
{
    core::file::Opened opened = core::file::open_regular_for_append(path, 0640);
    if (!opened) {
        error = fmt::format("cannot open audit file {}: {}", path, opened.error);
        return nullptr;
    }
    return std::unique_ptr<FileSink>{new FileSink{path, std::move(opened.fd)}};
}

FileSink::FileSink(std::string path, core::file::Fd fd)
    : path_(std::move(path)),
      name_("audit file " + path_),
      fd_(std::move(fd)),
      synced_at_(std::chrono::steady_clock::now())
{
}

FileSink::~FileSink()
{
    sync();
}

asio::awaitable<std::size_t> FileSink::deliver(std::span<const std::string_view> events)
{
    // One gather write for the lot: with O_APPEND the lines land whole, in order, never
    // interleaved with another writer's.
    static const char newline = '\n';
    std::array<iovec, 2 * 64> parts{};
    std::size_t delivered = 0;
    while (delivered < events.size()) {
        const std::size_t count = std::min(events.size() - delivered, parts.size() / 2);
        std::size_t left = 0;
        for (std::size_t i = 0; i < count; ++i) {
            const std::string_view e = events[delivered + i];
            parts[2 * i] = {const_cast<char*>(e.data()), e.size()};
            parts[2 * i + 1] = {const_cast<char*>(&newline), 1};
            left += e.size() + 1;
        }
        if (!write_all({parts.data(), 2 * count}, left))
            break;
        delivered += count;
    }
    if (delivered > 0) {
        dirty_ = true;
        if (std::chrono::steady_clock::now() - synced_at_ >= 1s)
            sync();
    }
    co_return delivered;
}

bool FileSink::write_all(std::span<iovec> parts, std::size_t left)
{
    std::size_t first = 0;
    while (left > 0) {
        const ssize_t n = ::writev(fd_.get(), parts.data() + first, static_cast<int>(parts.size() - first));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        auto done = static_cast<std::size_t>(n);
        left -= done;
        while (first < parts.size() && done >= parts[first].iov_len) {
            done -= parts[first].iov_len;
            ++first;
        }
        if (first < parts.size()) {
            parts[first].iov_base = static_cast<char*>(parts[first].iov_base) + done;
            parts[first].iov_len -= done;
        }
    }
    return true;
}

asio::awaitable<void> FileSink::flush()
{
    sync();
    co_return;
}

std::chrono::steady_clock::time_point FileSink::flush_due() const noexcept
{
    return dirty_ ? synced_at_ + 1s : std::chrono::steady_clock::time_point::max();
}

void FileSink::sync()
{
    if (!dirty_)
        return;
    if (::fdatasync(fd_.get()) != 0)
        core::log::warn("{}: fdatasync failed: {}", name_, std::strerror(errno));
    dirty_ = false;
    synced_at_ = std::chrono::steady_clock::now();
}

void FileSink::reopen()
{
    std::string error;
    auto fresh = open(path_, error);
    if (!fresh) {
        core::log::warn("{}; still writing to the file opened before", error);
        return;
    }
    sync();
    std::swap(fd_, fresh->fd_);  // `fresh` closes the old descriptor
    core::log::info("{} reopened", name_);
}

// ---------------------------------------------------------------------------------------------
// URL sink

core::Result<HttpUrl> parse_http_url(std::string_view url)
{
    constexpr std::string_view scheme = "http://";
    if (url.size() < scheme.size() || !http::iequals(url.substr(0, scheme.size()), scheme))
        return core::Errc::bad_value;
    url.remove_prefix(scheme.size());
    const auto slash = url.find('/');
    const std::string_view authority = url.substr(0, slash);
    const std::string_view target = slash == std::string_view::npos ? std::string_view{"/"} : url.substr(slash);
    if (authority.empty() || authority.find('@') != std::string_view::npos ||
        target.find_first_of("# \t\r\n") != std::string_view::npos)
        return core::Errc::bad_value;
    std::string_view host = authority;
    std::string_view port = "80";
    const auto bracket = authority.rfind(']');
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        unsigned number = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
        if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || number == 0 || number > 65535)
            return core::Errc::bad_value;
    }
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (host.empty() || host.find_first_of("[]/") != std::string_view::npos)
        return core::Errc::bad_value;
    return HttpUrl{std::string{host}, std::string{port}, std::string{target}};
}

/// The client and retry timer, made on the sink's strand.
struct UrlSink::Io {
    Io(asio::any_io_executor ex, const HttpUrl& url, http::ClientOptions options)
        : client(ex, url.host, url.port, options), timer(ex)
    {
    }
    http::Client client;
    asio::steady_timer timer;
};

UrlSink::UrlSink(HttpUrl url, std::chrono::milliseconds timeout)
    : url_(std::move(url)),
      name_(fmt::format("audit receiver http://{}:{}{}", url_.host, url_.port, url_.target)),
      timeout_(timeout)
{
}

UrlSink::~UrlSink() = default;

asio::awaitable<std::size_t> UrlSink::deliver(std::span<const std::string_view> events)
{
    std::size_t delivered = 0;
    for (const std::string_view event : events) {
        const bool ok = co_await post(event);
        if (ok)
            ++delivered;
    }
    co_return delivered;
}

asio::awaitable<bool> UrlSink::post(std::string_view event)
{
    static constexpr std::array<std::chrono::milliseconds, 3> retry_delays{1s, 3s, 5s};
    if (!io_) {
        http::ClientOptions options;
        options.connect_timeout = timeout_;
        options.io_timeout = timeout_;
        io_ = std::make_unique<Io>(co_await asio::this_coro::executor, url_, options);
    }
    const std::array<http::Header, 1> headers{{{"Content-Type", "application/json"}}};
    for (std::size_t attempt = 0;; ++attempt) {
        if (aborted_)
            co_return false;
        auto response = co_await io_->client.request("POST", url_.target, headers, event);
        if (response && response->status >= 200 && response->status < 300)
            co_return true;
        // A 4xx is the receiver's refusal of this event: sending it again cannot help.
        if (response && response->status < 500)
            co_return false;
        if (attempt == retry_delays.size() || aborted_)
            co_return false;
        io_->timer.expires_after(retry_delays[attempt]);
        co_await io_->timer.async_wait(core::use_nothrow_awaitable);
    }
}

void UrlSink::abort()
{
    aborted_ = true;
    if (io_) {
        io_->timer.cancel();
        io_->client.close();
    }
}

// ---------------------------------------------------------------------------------------------
// Middleware

Middleware::Flow Audit::before(Exchange& ex) const
{
    // /update/..., /update/ and /updates/; anything else under the prefix is a 404 without ids.
    if (ex.request.method == http::Method::post && ex.request.path.starts_with("/update")) {
        ex.scratch.audit_ids.clear();
        ex.audit_ids = &ex.scratch.audit_ids;
    }
    return Flow::next;
}

void Audit::after(Exchange& ex) const
{
    if (ex.audit_ids == nullptr || ex.response.status != 200 || ex.audit_ids->empty())
        return;
    const auto header = ex.request.header("X-Real-IP");
    const std::string_view ip = header && parse_ip(*header) ? *header : ex.peer;
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::system_clock::now().time_since_epoch());
    hub_.publish(audit_event(now.count(), *ex.audit_ids, ip));
}

}  // namespace server
