#include "agent/batch_queue.hpp"

#include <cassert>

namespace agent {

// Tokens never exceed queued batches plus end markers, so the channel never refuses one.
BatchQueue::BatchQueue(asio::any_io_executor executor, std::size_t capacity, std::size_t consumers)
    : queue_(capacity), ready_(std::move(executor), capacity + consumers), consumers_(consumers)
{
}

std::optional<Batch> BatchQueue::push(Batch batch)
{
    assert(!closed_);
    auto evicted = queue_.push(std::move(batch));
    // An eviction leaves the number of queued batches, and so of tokens, unchanged.
    if (!evicted) {
        [[maybe_unused]] const bool sent = ready_.try_send(std::error_code{}, true);
        assert(sent);
    }
    return evicted;
}

asio::awaitable<std::optional<Batch>> BatchQueue::pop()
{
    auto [ec, token] = co_await ready_.async_receive(core::use_nothrow_awaitable);
    if (ec)
        co_return std::nullopt;
    // Tokens are interchangeable: an end token taken while batches remain still yields a batch,
    // and the batch's own token is left for whoever comes next, who then finds the end.
    co_return queue_.pop();
}

void BatchQueue::close()
{
    if (closed_)
        return;
    closed_ = true;
    for (std::size_t i = 0; i < consumers_; ++i) {
        [[maybe_unused]] const bool sent = ready_.try_send(std::error_code{}, true);
        assert(sent);
    }
}

}  // namespace agent
