#pragma once

#include "agent/batch_queue.hpp"
#include "agent/config.hpp"
#include "agent/retry.hpp"
#include "agent/table.hpp"

#include "codec/gzip.hpp"
#include "codec/hmac.hpp"
#include "codec/sealed_box.hpp"
#include "core/asio.hpp"
#include "http/client.hpp"

#include <chrono>
#include <functional>
#include <span>
#include <string>

namespace agent {

struct SenderOptions {
    ServerAddress server;
    std::string key;  ///< HMAC key for HashSHA256; empty: requests are not signed
    std::optional<codec::PublicKey> seal_to;  ///< -crypto-key: the server's public key
    http::ClientOptions client{};
    std::span<const std::chrono::milliseconds> retry_delays = RetrySchedule::default_delays;
};

/// One sender coroutine's state: its own keep-alive connection, gzip compressor and buffers.
/// It POSTs each batch to /updates/ gzipped (once per batch, however many attempts), sealed to the
/// server's public key when one is set, signed over the bytes sent when a key is set, with
/// X-Real-IP set to the local address of its connection to the server.
/// Use from one strand; `stop` too.
class Sender {
public:
    Sender(asio::any_io_executor executor, SenderOptions options);

    /// One POST of `batch`; logs nothing. The response, or the transport error.
    asio::awaitable<core::Result<http::ClientResponse>> post(const Batch& batch);
    /// Delivers `batch` following the retry schedule: true when the server took it. A 4xx is
    /// logged with the server's message and not retried; giving up is logged once.
    asio::awaitable<bool> deliver(const Batch& batch);
    /// Takes batches from `queue` until it ends, delivering each; a batch that is not delivered
    /// goes to `undelivered` (the table takes its counts back). `queue` outlives the coroutine.
    asio::awaitable<void> run(BatchQueue& queue, std::function<void(const Batch&)> undelivered);

    /// Shutdown: a retry wait ends now, and after the next failure the batch is given up
    /// instead of waiting again ("send what is pending once").
    void stop();
    /// Hard stop at the end of the shutdown deadline: also closes the connection, so a request
    /// in flight fails now.
    void abort();

private:
    void prepare(const Batch& batch);
    /// With a public key: seals the gzipped body (signed afterwards: encrypt-then-MAC).
    void seal_body();
    /// The body as it goes on the wire: sealed or only gzipped.
    std::string_view wire_body() const noexcept;
    /// X-Real-IP follows the connection's local address (it may change on reconnection).
    void note_local_address(const asio::ip::address& local);

    asio::any_io_executor executor_;
    SenderOptions options_;
    http::Client client_;
    codec::Gzip gzip_;
    std::string gzipped_;
    std::uint64_t gzipped_sequence_ = 0;  // the batch gzipped_ holds (sequences start at 1)
    std::string sealed_;
    codec::HexDigest hash_{};
    std::string real_ip_;
    std::optional<asio::ip::address> real_ip_address_;  // what real_ip_ spells
    asio::steady_timer retry_timer_;
    bool stopping_ = false;
    bool aborted_ = false;
};

}  // namespace agent
