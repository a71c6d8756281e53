#include "server/middleware.hpp"

#include "codec/hmac.hpp"
#include "core/log.hpp"

#include <chrono>
#include <exception>

namespace server {

core::awaitable<void> Next::operator()(Exchange& ex) const
{
    if (rest_.empty())
        return (*end_)(ex);
    return (*rest_.front())(ex, Next{rest_.subspan(1), *end_});
}

core::awaitable<void> GuardExceptions::operator()(Exchange& ex, Next next) const
{
    try {
        co_await next(ex);
    } catch (const std::exception& e) {
        core::log::error("{} {}: unexpected error: {}", ex.request.method_text, ex.request.path, e.what());
        ex.response.clear();
        ex.response.fail(500, "internal error");
    }
}

core::awaitable<void> AccessLog::operator()(Exchange& ex, Next next) const
{
    const auto start = std::chrono::steady_clock::now();
    co_await next(ex);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
    if (core::log::threshold() > core::log::Level::info)
        co_return;
    // Formatted on the stack: the access log costs one write(2), no allocation.
    fmt::basic_memory_buffer<char, 512> line;
    fmt::format_to(std::back_inserter(line), "{} {} {} {} {}B {}us", ex.peer,
                   ex.request.method_text, ex.request.target, ex.response.status, ex.response.payload().size(),
                   us.count());
    core::log::write(core::log::Level::info, {line.data(), line.size()});
}

core::awaitable<void> Signing::operator()(Exchange& ex, Next next) const
{
    // Over the bytes as received: before gunzip (and decryption) touch the body.
    if (auto sent = ex.request.header("HashSHA256"); sent && !codec::hmac_sha256_matches(key_, ex.body, *sent)) {
        ex.response.fail(core::Errc::bad_hash);
    } else {
        co_await next(ex);
    }
    // Every response is signed over its body as sent (after gzip, which sits inside).
    ex.response.hash_hex = codec::hmac_sha256_hex(key_, ex.response.payload());
    ex.response.add_header("HashSHA256", codec::view(ex.response.hash_hex));
}

namespace {

bool compressible(std::string_view type) noexcept
{
    return type.starts_with("application/json") || type.starts_with("text/");
}

}  // namespace

core::awaitable<void> Gzip::operator()(Exchange& ex, Next next) const
{
    if (auto encoding = ex.request.header("Content-Encoding"); encoding && !ex.body.empty()) {
        if (http::header_has_token(*encoding, "gzip") || http::header_has_token(*encoding, "x-gzip")) {
            if (auto r = ex.scratch.gzip().decompress(ex.body, ex.scratch.decoded_body, max_decoded_); !r) {
                ex.response.fail(r.error());
                co_return;
            }
            ex.body = ex.scratch.decoded_body;
        } else if (!http::header_has_token(*encoding, "identity")) {
            ex.response.fail(415, "unsupported Content-Encoding");
            co_return;
        }
    }
    co_await next(ex);

    auto accept = ex.request.header("Accept-Encoding");
    if (!accept || !http::header_has_token(*accept, "gzip") || !compressible(ex.response.type))
        co_return;
    auto& r = ex.response;
    ex.scratch.gzip().compress({r.body.data(), r.body.size()}, r.encoded);
    r.body_is_encoded = true;
    r.add_header("Content-Encoding", "gzip");
    r.add_header("Vary", "Accept-Encoding");
}

core::awaitable<void> RequireJson::operator()(Exchange& ex, Next next) const
{
    const auto path = ex.request.path;
    const bool json_endpoint = path == "/update/" || path == "/value/" || path == "/updates/";
    if (json_endpoint && ex.request.method == http::Method::post) {
        auto type = ex.request.header("Content-Type");
        std::string_view media = type ? type->substr(0, type->find(';')) : std::string_view{};
        while (!media.empty() && (media.back() == ' ' || media.back() == '\t'))
            media.remove_suffix(1);
        if (!http::iequals(media, "application/json")) {
            ex.response.fail(core::Errc::unsupported_media_type);
            co_return;
        }
    }
    co_await next(ex);
}

}  // namespace server
