#include "server/middleware.hpp"

#include "codec/hmac.hpp"
#include "core/log.hpp"
#include "server/endpoints.hpp"

#include <algorithm>
#include <chrono>

namespace server {

namespace {

using Layers = std::span<const std::unique_ptr<Middleware>>;
using Flow = Middleware::Flow;

/// Whether `m` turns `error` into a response.
bool recovered(const Middleware& m, Exchange& ex, const std::exception_ptr& error)
{
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return m.recover(ex, e);
    } catch (...) {
        return false;
    }
}

/// The way out through `entered` (outermost first), each of which let the exchange in: after()
/// hooks innermost first, or, while an exception is in flight, a chance to recover from it.
void leave(Exchange& ex, Layers entered, std::exception_ptr error)
{
    for (std::size_t i = entered.size(); i-- > 0;) {
        const Middleware& m = *entered[i];
        if (error) {
            if (recovered(m, ex, error))
                error = nullptr;
            continue;
        }
        try {
            m.after(ex);
        } catch (...) {
            error = std::current_exception();
        }
    }
    if (error)
        std::rethrow_exception(error);
}

/// Runs the hook middleware at the front of `layers` (there is at least one) in this single
/// frame, the rest of the chain inside them.
core::awaitable<void> run_hooks(Exchange& ex, Layers layers, const Handler& end)
{
    std::size_t hooks = 1;
    while (hooks < layers.size() && !layers[hooks]->awaits())
        ++hooks;
    std::size_t entered = 0;  // layers whose before() said next: their way out is owed
    std::exception_ptr error;
    try {
        while (entered < hooks && layers[entered]->before(ex) == Flow::next)
            ++entered;
        if (entered == hooks)
            co_await Next{layers.subspan(hooks), end}(ex);
    } catch (...) {
        error = std::current_exception();
    }
    leave(ex, layers.first(entered), std::move(error));
}

}  // namespace

Pipeline::Pipeline(std::vector<std::unique_ptr<Middleware>> chain, std::unique_ptr<Handler> end)
    : chain_(std::move(chain)),
      end_(std::move(end)),
      hooks_only_(std::none_of(chain_.begin(), chain_.end(), [](const auto& m) { return m->awaits(); }))
{
}

bool Pipeline::run_now(Exchange& ex) const
{
    if (!hooks_only_ || !end_->answers_now(ex.request))
        return false;
    // run_hooks() without the frame: the same way in and out.
    std::size_t entered = 0;
    std::exception_ptr error;
    try {
        while (entered < chain_.size() && chain_[entered]->before(ex) == Flow::next)
            ++entered;
        if (entered == chain_.size())
            end_->answer_now(ex);
    } catch (...) {
        error = std::current_exception();
    }
    leave(ex, Layers{chain_}.first(entered), std::move(error));
    return true;
}

core::awaitable<void> Next::operator()(Exchange& ex) const
{
    if (rest_.empty())
        return (*end_)(ex);
    if (rest_.front()->awaits())
        return (*rest_.front())(ex, Next{rest_.subspan(1), *end_});
    return run_hooks(ex, rest_, *end_);
}

core::awaitable<void> Middleware::operator()(Exchange& ex, Next next) const
{
    if (before(ex) == Flow::answered)
        co_return;
    try {
        co_await next(ex);
    } catch (const std::exception& e) {
        if (!recover(ex, e))
            throw;
        co_return;
    }
    after(ex);
}

bool GuardExceptions::recover(Exchange& ex, const std::exception& e) const
{
    core::log::error("{} {}: unexpected error: {}", ex.request.method_text, ex.request.path, e.what());
    ex.response.clear();
    ex.response.fail(500, "internal error");
    return true;
}

Middleware::Flow AccessLog::before(Exchange& ex) const
{
    if (ex.started == std::chrono::steady_clock::time_point{})  // else CountRequests read it
        ex.started = std::chrono::steady_clock::now();
    return Flow::next;
}

void AccessLog::after(Exchange& ex) const
{
    ex.finished = std::chrono::steady_clock::now();  // CountRequests, outside, reuses it
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(ex.finished - ex.started);
    if (core::log::threshold() > core::log::Level::info)
        return;
    if (core::log::format() == core::log::Format::json) {
        using core::log::Field;
        const Field fields[] = {Field::string("peer", ex.peer),
                                Field::string("method", ex.request.method_text),
                                Field::string("target", ex.request.target),
                                Field::integer("status", ex.response.status),
                                Field::integer("bytes", static_cast<std::int64_t>(ex.response.payload().size())),
                                Field::integer("duration_us", us.count())};
        core::log::write(core::log::Level::info, "request", fields);
        return;
    }
    // Formatted on the stack: the access log costs one write(2), no allocation.
    fmt::basic_memory_buffer<char, 512> line;
    fmt::format_to(std::back_inserter(line), "{} {} {} {} {}B {}us", ex.peer,
                   ex.request.method_text, ex.request.target, ex.response.status, ex.response.payload().size(),
                   us.count());
    core::log::write(core::log::Level::info, {line.data(), line.size()});
}

namespace {

/// Every response is signed over its body as sent (after gzip, which sits inside).
void sign(Exchange& ex, std::string_view key)
{
    ex.response.hash_hex = codec::hmac_sha256_hex(key, ex.response.payload());
    ex.response.add_header("HashSHA256", codec::view(ex.response.hash_hex));
}

}  // namespace

Middleware::Flow Signing::before(Exchange& ex) const
{
    // Over the bytes as received: before gunzip (and decryption) touch the body.
    const auto sent = ex.request.header(http::Field::hash_sha256);
    if (sent && !codec::hmac_sha256_matches(key_, ex.body, *sent)) {
        ex.response.fail(core::Errc::bad_hash);
        sign(ex, key_);
        return Flow::answered;
    }
    return Flow::next;
}

void Signing::after(Exchange& ex) const { sign(ex, key_); }

namespace {

bool compressible(std::string_view type) noexcept
{
    return type.starts_with("application/json") || type.starts_with("text/");
}

}  // namespace

Middleware::Flow Gzip::before(Exchange& ex) const
{
    const auto encoding = ex.request.header(http::Field::content_encoding);
    if (!encoding || ex.body.empty())
        return Flow::next;
    if (http::header_has_token(*encoding, "gzip") || http::header_has_token(*encoding, "x-gzip")) {
        if (auto r = ex.scratch.gzip().decompress(ex.body, ex.scratch.decoded_body, max_decoded_); !r) {
            ex.response.fail(r.error());
            return Flow::answered;
        }
        ex.body = ex.scratch.decoded_body.view();
    } else if (!http::header_has_token(*encoding, "identity")) {
        ex.response.fail(415, "unsupported Content-Encoding");
        return Flow::answered;
    }
    return Flow::next;
}

void Gzip::after(Exchange& ex) const
{
    const auto accept = ex.request.header(http::Field::accept_encoding);
    if (!accept || !http::header_has_token(*accept, "gzip") || !compressible(ex.response.type))
        return;
    auto& r = ex.response;
    ex.scratch.gzip().compress({r.body.data(), r.body.size()}, r.encoded);
    r.body_is_encoded = true;
    r.add_header("Content-Encoding", "gzip");
    r.add_header("Vary", "Accept-Encoding");
}

Middleware::Flow RequireJson::before(Exchange& ex) const
{
    // A method the endpoint does not accept is the router's 405, not a 415.
    if (ex.request.path.size() > longest_json_path || ex.request.method == http::Method::get)
        return Flow::next;
    const Endpoint* e = find_endpoint(ex.request.path);
    if (e == nullptr || !e->json || !accepts(*e, ex.request.method))
        return Flow::next;
    constexpr std::string_view json = "application/json";
    std::string_view media = ex.request.header(http::Field::content_type).value_or(std::string_view{});
    // Parameters and the spaces before them only when there is more than the bare type (the
    // usual case, without a libc call).
    if (media.size() != json.size()) {
        media = media.substr(0, media.find(';'));
        while (!media.empty() && (media.back() == ' ' || media.back() == '\t'))
            media.remove_suffix(1);
    }
    if (!http::iequals(media, json)) {
        ex.response.fail(core::Errc::unsupported_media_type);
        return Flow::answered;
    }
    return Flow::next;
}

}  // namespace server
