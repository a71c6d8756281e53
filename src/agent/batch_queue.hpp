#pragma once

#include "agent/drop_oldest_queue.hpp"
#include "agent/table.hpp"
#include "core/asio.hpp"

#include <asio/experimental/channel.hpp>

#include <cstddef>
#include <optional>

namespace agent {

/// The bounded queue between the report timer and the sender coroutines. A DropOldestQueue holds
/// the batches; a channel carries one wake-up token per queued batch, plus one end token per
/// sender after `close` (in-band, because before Asio 1.28 a channel's close() discards what it
/// buffers). All calls on one strand or thread: the agent's io_context runs on one thread.
class BatchQueue {
public:
    BatchQueue(asio::any_io_executor executor, std::size_t capacity, std::size_t consumers);

    /// Queues `batch`; when full the oldest batch is evicted and returned (counted in `dropped`).
    /// Must not be called after `close`.
    std::optional<Batch> push(Batch batch);
    /// Waits for the next batch; nullopt once the queue is closed and drained, or if the wait was
    /// cancelled.
    asio::awaitable<std::optional<Batch>> pop();
    /// No more pushes: each consumer gets the remaining batches, then nullopt.
    void close();

    std::size_t size() const noexcept { return queue_.size(); }
    std::uint64_t dropped() const noexcept { return queue_.dropped(); }

private:
    DropOldestQueue<Batch> queue_;
    // The bool is unused: Asio 1.22 cannot instantiate a channel of void(error_code) alone.
    asio::experimental::channel<void(std::error_code, bool)> ready_;
    std::size_t consumers_;
    bool closed_ = false;
};

}  // namespace agent
