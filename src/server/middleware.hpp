#pragma once

#include "core/asio.hpp"
#include "server/exchange.hpp"

#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace server {

class Middleware;
class Handler;

/// The rest of the chain after a middleware: calling it runs the next middleware or, at the
/// end, the router. Cheap to copy (two words).
class Next {
public:
    Next(std::span<const std::unique_ptr<Middleware>> rest, const Handler& end) noexcept
        : rest_(rest), end_(&end) {}
    /// Consecutive hook middleware run in one coroutine frame; a waiting middleware gets its own.
    core::awaitable<void> operator()(Exchange& ex) const;

private:
    std::span<const std::unique_ptr<Middleware>> rest_;
    const Handler* end_;
};

/// Acts before and after the inner layers, or answers alone. Most middleware only needs
/// synchronous hooks, which the chain calls without a coroutine frame per layer; one that must
/// wait overrides operator() and says so to the constructor. Shared by all connections:
/// implementations are immutable after construction (thread-safe); per-request state lives in
/// the Exchange.
class Middleware {
public:
    enum class Flow : std::uint8_t {
        next,      ///< pass the exchange inward; after() runs on the way out
        answered,  ///< the response is final: inner layers and this after() are skipped
    };

    virtual ~Middleware() = default;

    /// On the way in.
    virtual Flow before(Exchange&) const { return Flow::next; }
    /// On the way out, when before() said next and the inner layers returned normally.
    virtual void after(Exchange&) const {}
    /// An exception escaped the inner layers: true when this layer turned it into a response
    /// (its after() is skipped, outer layers go on normally); false lets it propagate.
    virtual bool recover(Exchange&, const std::exception&) const { return false; }

    /// Runs this middleware around `next`. The default calls the hooks, as the chain does.
    virtual core::awaitable<void> operator()(Exchange& ex, Next next) const;
    /// The chain must call operator(), not the hooks.
    bool awaits() const noexcept { return awaits_; }

protected:
    Middleware() = default;
    /// `awaits`: operator() is overridden because the middleware waits.
    explicit Middleware(bool awaits) noexcept : awaits_(awaits) {}

private:
    bool awaits_ = false;
};

/// Answers a request (the router).
class Handler {
public:
    virtual ~Handler() = default;
    virtual core::awaitable<void> operator()(Exchange& ex) const = 0;

    /// Whether answer_now() can answer `request` without waiting, judged from its request line
    /// before any middleware runs (a memory store can; PostgreSQL cannot).
    virtual bool answers_now(const http::Request&) const { return false; }
    /// operator() as a plain call, for a request answers_now() accepted: no coroutine frame.
    virtual void answer_now(Exchange&) const {}
};

/// The middleware chain built once at start-up, outermost first.
class Pipeline {
public:
    Pipeline(std::vector<std::unique_ptr<Middleware>> chain, std::unique_ptr<Handler> end);

    core::awaitable<void> operator()(Exchange& ex) const { return Next{chain_, *end_}(ex); }

    /// Runs the whole chain as plain calls when every middleware is a hook and the handler
    /// answers without waiting: true. Otherwise false, nothing has run, and the caller awaits
    /// operator(). The same hooks run in the same order either way; a coroutine frame per
    /// request (and one per layer that awaits) is what the plain path saves.
    bool run_now(Exchange& ex) const;

private:
    std::vector<std::unique_ptr<Middleware>> chain_;
    std::unique_ptr<Handler> end_;
    bool hooks_only_;
};

// The middleware of the server, each configured once.

/// Outermost: an unexpected exception becomes a 500 for this request, logged once.
class GuardExceptions final : public Middleware {
public:
    bool recover(Exchange& ex, const std::exception& e) const override;
};

/// Access log: peer, method, target, status, bytes, duration; one line per request answered
/// without an exception.
class AccessLog final : public Middleware {
public:
    Flow before(Exchange& ex) const override;
    void after(Exchange& ex) const override;
};

/// Checks HashSHA256 over the body exactly as received and signs the response body as sent.
class Signing final : public Middleware {
public:
    explicit Signing(std::string key) : key_(std::move(key)) {}
    Flow before(Exchange& ex) const override;
    void after(Exchange& ex) const override;

private:
    std::string key_;
};

/// Content-Encoding: gzip requests are inflated (bounded); responses compressed for clients
/// that accept gzip, when the type is text, JSON or HTML.
class Gzip final : public Middleware {
public:
    explicit Gzip(std::size_t max_decoded) : max_decoded_(max_decoded) {}
    Flow before(Exchange& ex) const override;
    void after(Exchange& ex) const override;

private:
    std::size_t max_decoded_;
};

/// The JSON endpoints require Content-Type: application/json (parameters allowed): else 415.
class RequireJson final : public Middleware {
public:
    Flow before(Exchange& ex) const override;
};

}  // namespace server
