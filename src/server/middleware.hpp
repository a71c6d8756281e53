#pragma once

#include "core/asio.hpp"
#include "server/exchange.hpp"

#include <memory>
#include <span>
#include <string>
#include <vector>

namespace server {

class Middleware;

/// The rest of the chain after a middleware: calling it runs the next middleware or, at the
/// end, the router. Cheap to copy (two words).
class Next {
public:
    Next(std::span<const std::unique_ptr<Middleware>> rest, const class Handler& end) noexcept
        : rest_(rest), end_(&end) {}
    core::awaitable<void> operator()(Exchange& ex) const;

private:
    std::span<const std::unique_ptr<Middleware>> rest_;
    const Handler* end_;
};

/// Acts before and after `next`, or answers alone without calling it. Shared by all
/// connections: implementations are immutable after construction (thread-safe).
class Middleware {
public:
    virtual ~Middleware() = default;
    virtual core::awaitable<void> operator()(Exchange& ex, Next next) const = 0;
};

/// Answers a request (the router).
class Handler {
public:
    virtual ~Handler() = default;
    virtual core::awaitable<void> operator()(Exchange& ex) const = 0;
};

/// The middleware chain built once at start-up, outermost first.
class Pipeline {
public:
    Pipeline(std::vector<std::unique_ptr<Middleware>> chain, std::unique_ptr<Handler> end)
        : chain_(std::move(chain)), end_(std::move(end)) {}
    core::awaitable<void> operator()(Exchange& ex) const { return Next{chain_, *end_}(ex); }

private:
    std::vector<std::unique_ptr<Middleware>> chain_;
    std::unique_ptr<Handler> end_;
};

// The middleware of the server, each configured once.

/// Outermost: an unexpected exception becomes a 500 for this request, logged once.
class GuardExceptions final : public Middleware {
public:
    core::awaitable<void> operator()(Exchange& ex, Next next) const override;
};

/// Access log: method, path, status, bytes, duration; one line per request.
class AccessLog final : public Middleware {
public:
    core::awaitable<void> operator()(Exchange& ex, Next next) const override;
};

/// Checks HashSHA256 over the body exactly as received and signs the response body as sent.
class Signing final : public Middleware {
public:
    explicit Signing(std::string key) : key_(std::move(key)) {}
    core::awaitable<void> operator()(Exchange& ex, Next next) const override;

private:
    std::string key_;
};

/// Content-Encoding: gzip requests are inflated (bounded); responses compressed for clients
/// that accept gzip, when the type is text, JSON or HTML.
class Gzip final : public Middleware {
public:
    explicit Gzip(std::size_t max_decoded) : max_decoded_(max_decoded) {}
    core::awaitable<void> operator()(Exchange& ex, Next next) const override;

private:
    std::size_t max_decoded_;
};

/// The JSON endpoints require Content-Type: application/json (parameters allowed): else 415.
class RequireJson final : public Middleware {
public:
    core::awaitable<void> operator()(Exchange& ex, Next next) const override;
};

}  // namespace server
