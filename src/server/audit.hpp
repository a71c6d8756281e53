#pragma once

// The audit trail (API.md "Audit"): after each successful update request, one event
//   {"ts":<unix seconds>,"metrics":["id",...],"ip_address":"<client>"}
// goes to every configured sink. The request path only enqueues (AuditHub::publish, never
// waits); one coroutine per sink delivers from that sink's bounded queue.

#include "core/asio.hpp"
#include "core/file.hpp"
#include "core/result.hpp"
#include "server/middleware.hpp"

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace server {

/// Appends `id` as a JSON string to `ids`, a comma-separated list without brackets.
void append_audit_id(std::string& ids, std::string_view id);
/// One event as a JSON object (no newline). `ids` is a list built by append_audit_id.
std::string audit_event(std::int64_t unix_seconds, std::string_view ids, std::string_view ip_address);

/// Where events go. A sink runs on its own strand, one call at a time; the hub knows sinks only
/// through this interface, so another destination is one more class.
class AuditSink {
public:
    virtual ~AuditSink() = default;
    /// For logs: "audit file /var/log/a.log".
    virtual std::string_view name() const noexcept = 0;
    /// Delivers `events` in order (each retried as the sink's policy says); returns how many
    /// arrived. The hub hands over what has queued up since the last call (at most 64), so a
    /// sink can write them at once.
    virtual asio::awaitable<std::size_t> deliver(std::span<const std::string_view> events) = 0;
    /// Make delivered events durable: called once flush_due() has passed and when the hub closes.
    virtual asio::awaitable<void> flush() { co_return; }
    /// When flush() is wanted even if no event comes (time_point::max(): not needed).
    virtual std::chrono::steady_clock::time_point flush_due() const noexcept
    {
        return std::chrono::steady_clock::time_point::max();
    }
    /// SIGHUP: reopen what rotation may have moved away.
    virtual void reopen() {}
    /// The shutdown grace is over: a delivery in flight ends now, unsuccessfully.
    virtual void abort() {}
};

/// Fans events out to the sinks through one bounded queue per sink: a sink whose queue is full
/// drops the newest event (counted, logged at most every 10 s), so a slow or dead sink never
/// delays a request nor another sink. Thread-safe.
class AuditHub {
public:
    /// `capacity`: events each sink's queue holds.
    explicit AuditHub(std::size_t capacity);
    ~AuditHub();
    AuditHub(const AuditHub&) = delete;
    AuditHub& operator=(const AuditHub&) = delete;

    /// Before start().
    void add(std::unique_ptr<AuditSink> sink);
    bool empty() const noexcept { return sinks_.empty(); }

    /// Queues `event` for every sink; never waits, never throws for a full queue.
    void publish(std::string event);
    /// Starts one delivery coroutine per sink, each on its own strand of `executor`.
    void start(asio::any_io_executor executor);
    /// Asks every sink to reopen (SIGHUP), on its strand.
    void reopen();
    /// Shutdown: accepts no more events and lets each sink deliver what is queued until
    /// `deadline`; then aborts the deliveries left (counted as failed). Returns once every
    /// delivery coroutine has ended, having let go of the executor (the hub may then outlive
    /// its io_context).
    asio::awaitable<void> close(std::chrono::steady_clock::time_point deadline);

    /// Counters for the self-metrics, each per sink: events queued, events dropped because a
    /// queue was full, deliveries that failed for good, deliveries that succeeded.
    std::uint64_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }
    std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
    std::uint64_t failed() const noexcept { return failed_.load(std::memory_order_relaxed); }
    std::uint64_t delivered() const noexcept { return delivered_.load(std::memory_order_relaxed); }

private:
    struct Lane;
    asio::awaitable<void> run_lane(Lane& lane);
    void note_drop();
    /// Drops the strands and timers once no delivery coroutine runs.
    void release_io();
    void note_failure(const Lane& lane, std::size_t events);

    std::size_t capacity_;
    std::vector<std::unique_ptr<Lane>> sinks_;
    std::atomic<std::uint64_t> queued_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::uint64_t> failed_{0};
    std::atomic<std::uint64_t> delivered_{0};
    std::atomic<std::int64_t> drop_logged_at_{0};     // steady seconds of the last drop log line
    std::atomic<std::int64_t> failure_logged_at_{0};  // ... and of the last failure log line
    std::atomic<std::size_t> running_{0};
};

/// Appends one JSON line per event to a file through one descriptor, opened by
/// core::file::open_regular_for_append (no symbolic link followed, only a regular file). Calls fdatasync at most once
/// a second while events flow and within a second after the last one (so a power failure loses
/// at most about a second of events, and a busy trail costs one sync per second, not per
/// event), before reopening and at shutdown. reopen() (SIGHUP) opens the path again, so
/// rotation by rename works; if that fails the old descriptor stays in use and the failure is
/// logged.
class FileSink final : public AuditSink {
public:
    /// Opens `path` now. Failure: an error line naming the file (a startup error).
    static std::unique_ptr<FileSink> open(const std::string& path, std::string& error);
    ~FileSink() override;

    std::string_view name() const noexcept override { return name_; }
    asio::awaitable<std::size_t> deliver(std::span<const std::string_view> events) override;
    asio::awaitable<void> flush() override;
    std::chrono::steady_clock::time_point flush_due() const noexcept override;
    void reopen() override;

private:
    FileSink(std::string path, core::file::Fd fd);
    /// writev until `left` bytes of `parts` are written (it adjusts `parts`); false on an error.
    bool write_all(std::span<iovec> parts, std::size_t left);
    void sync();

    std::string path_;
    std::string name_;
    core::file::Fd fd_;
    bool dirty_ = false;
    std::chrono::steady_clock::time_point synced_at_;
};

/// An http:// URL split for http::Client: host (IPv6 without brackets), port, target.
struct HttpUrl {
    std::string host;
    std::string port;
    std::string target;
};
/// `http://host[:port][/path]`; the port defaults to 80 and the path to `/`. Other schemes,
/// user info, fragments or a missing host: Errc::bad_value.
core::Result<HttpUrl> parse_http_url(std::string_view url);

/// POSTs each event as `Content-Type: application/json` to a URL on a keep-alive connection
/// (http::Client), each attempt bounded by `timeout`; a transport error or 5xx is retried after
/// 1 s, 3 s and 5 s, a 4xx is not retried.
class UrlSink final : public AuditSink {
public:
    UrlSink(HttpUrl url, std::chrono::milliseconds timeout);
    ~UrlSink() override;

    std::string_view name() const noexcept override { return name_; }
    asio::awaitable<std::size_t> deliver(std::span<const std::string_view> events) override;
    void abort() override;

private:
    struct Io;
    /// One event, POSTed and retried: true when the receiver took it.
    asio::awaitable<bool> post(std::string_view event);

    HttpUrl url_;
    std::string name_;
    std::chrono::milliseconds timeout_;
    std::unique_ptr<Io> io_;  // created on the sink's strand at the first delivery
    bool aborted_ = false;
};

/// The request path's part: marks update requests so that the router lists the ids it stored,
/// and after a successful one (200) publishes the event. `hub` outlives the middleware.
class Audit final : public Middleware {
public:
    explicit Audit(AuditHub& hub) : hub_(hub) {}
    Flow before(Exchange& ex) const override;
    void after(Exchange& ex) const override;

private:
    AuditHub& hub_;
};

}  // namespace server
