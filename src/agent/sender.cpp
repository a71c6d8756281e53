#include "agent/sender.hpp"

#include "core/log.hpp"

#include <array>

namespace agent {
namespace {

/// The server's message for a log line: one line, bounded.
std::string_view excerpt(std::string_view body) noexcept
{
    body = body.substr(0, body.find_first_of("\r\n"));
    return body.substr(0, 200);
}

}  // namespace

Sender::Sender(asio::any_io_executor executor, SenderOptions options)
    : executor_(executor),
      options_(std::move(options)),
      client_(executor, options_.server.host, options_.server.port, options_.client),
      retry_timer_(executor)
{
}

void Sender::prepare(const Batch& batch)
{
    if (gzipped_sequence_ == batch.sequence)
        return;
    gzip_.compress(batch.body, gzipped_);
    // A report every few seconds: the compressor's 200 KB go back to the system in between
    // (main() keeps glibc mapping blocks that large, so freeing them unmaps them).
    gzip_.release();
    seal_body();
    // The signature covers the body exactly as sent: gzipped, and sealed when encrypting.
    if (!options_.key.empty())
        hash_ = codec::hmac_sha256_hex(options_.key, wire_body());
    gzipped_sequence_ = batch.sequence;
}

void Sender::seal_body()
{
    if (options_.seal_to)
        codec::seal(*options_.seal_to, gzipped_, sealed_);
}

std::string_view Sender::wire_body() const noexcept
{
    return options_.seal_to ? std::string_view{sealed_} : std::string_view{gzipped_};
}

void Sender::note_local_address(const asio::ip::address& local)
{
    if (real_ip_address_ == local)
        return;
    real_ip_address_ = local;
    real_ip_ = local.to_string();
}

asio::awaitable<core::Result<http::ClientResponse>> Sender::post(const Batch& batch)
{
    prepare(batch);
    // Connects when needed: the header carries the address the server will see.
    auto local = co_await client_.local_address();
    if (!local)
        co_return local.error();
    note_local_address(*local);
    // No Accept-Encoding: the answer is only read for its status and, on a 4xx, logged as text.
    std::array<http::Header, 5> headers{{
        {"Content-Type", "application/json"},
        {"Content-Encoding", "gzip"},
        {"X-Real-IP", real_ip_},
    }};
    std::size_t n = 3;
    if (!options_.key.empty())
        headers[n++] = {"HashSHA256", codec::view(hash_)};
    if (options_.seal_to)
        headers[n++] = {"X-Encrypted", "sealed-box"};
    co_return co_await client_.request("POST", "/updates/", std::span{headers.data(), n}, wire_body());
}

asio::awaitable<bool> Sender::deliver(const Batch& batch)
{
    RetrySchedule schedule{options_.retry_delays};
    for (;;) {
        auto response = co_await post(batch);
        const int status = response ? response->status : 0;
        const Outcome outcome = classify(response.error(), status);
        const auto retry_after = response ? response->header("Retry-After") : std::nullopt;
        const auto next = schedule.after(outcome, RetrySchedule::Clock::now(),
                                         retry_after ? parse_retry_after(*retry_after) : std::nullopt);
        if (next.action == RetrySchedule::Action::done)
            co_return true;
        const std::string reason = response ? fmt::format("HTTP {} {}", status, excerpt(response->body))
                                            : std::string{core::message(response.error())};
        if (next.action == RetrySchedule::Action::give_up) {
            if (outcome == Outcome::rejected)
                core::log::warn("report {} rejected by the server: {}", batch.sequence, reason);
            else
                core::log::warn("report {} dropped after {} retries: {}", batch.sequence, schedule.retries(), reason);
            co_return false;
        }
        if (stopping_) {
            core::log::warn("report {} dropped at shutdown: {}", batch.sequence, reason);
            co_return false;
        }
        core::log::debug("report {}: {}; retry {} at +{} ms", batch.sequence, reason, schedule.retries(),
                         std::chrono::duration_cast<std::chrono::milliseconds>(next.at - RetrySchedule::Clock::now())
                             .count());
        retry_timer_.expires_at(next.at);
        // Cancelled by stop(): one more attempt right away, then no more waiting.
        co_await retry_timer_.async_wait(core::use_nothrow_awaitable);
    }
}

asio::awaitable<void> Sender::run(BatchQueue& queue, std::function<void(const Batch&)> undelivered)
{
    // No co_await inside conditions: see core/asio.hpp.
    for (;;) {
        std::optional<Batch> batch = co_await queue.pop();
        if (!batch)
            co_return;
        // After abort() the deadline has passed: what is left is not attempted.
        bool delivered = false;
        if (!aborted_)
            delivered = co_await deliver(*batch);
        if (!delivered)
            undelivered(*batch);
    }
}

void Sender::stop()
{
    stopping_ = true;
    retry_timer_.cancel();
}

void Sender::abort()
{
    stop();
    aborted_ = true;
    client_.close();
}

}  // namespace agent
