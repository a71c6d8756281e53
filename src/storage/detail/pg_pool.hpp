#pragma once

#include <asio.hpp>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

namespace storage::detail {

/// A fixed set of slot indices [0, n) lent to one holder at a time; waiters are served first come,
/// first served. Thread-safe.
///
/// Why not `asio::experimental::concurrent_channel`: in Asio 1.22 a `try_send` to a waiting
/// receiver whose executor is the channel's own runs the receiver inline while the channel's mutex
/// is held, so a coroutine that gives its slot straight back deadlocks. Here a grant is always
/// posted to the waiter's executor, outside the lock.
class SlotPool {
public:
    SlotPool(asio::any_io_executor ex, std::size_t n) : ex_(std::move(ex))
    {
        free_.reserve(n);
        for (std::size_t i = n; i > 0; --i)
            free_.push_back(i - 1);
    }
    SlotPool(const SlotPool&) = delete;
    SlotPool& operator=(const SlotPool&) = delete;

    /// Completes with (error_code, slot) once a slot is free; operation_aborted after shutdown()
    /// or on cancellation (per-operation cancellation is supported, e.g. by core::with_timeout).
    template <class Token>
    auto async_acquire(Token&& token)
    {
        return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
            [this](auto handler) { this->start(std::move(handler)); }, token);
    }

    /// A free slot without waiting, or false.
    bool try_acquire(std::size_t& slot)
    {
        std::lock_guard lock{mutex_};
        if (shut_ || free_.empty())
            return false;
        slot = free_.back();
        free_.pop_back();
        return true;
    }

    /// Gives a slot back: to the oldest waiter if there is one.
    void release(std::size_t slot)
    {
        std::unique_ptr<Waiter> next;
        {
            std::lock_guard lock{mutex_};
            if (waiters_.empty()) {
                free_.push_back(slot);
                return;
            }
            next = std::move(waiters_.front());
            waiters_.pop_front();
        }
        next->complete({}, slot);
    }

    /// Fails every pending and future acquisition; slots still lent may be released as usual.
    void shutdown()
    {
        std::list<std::unique_ptr<Waiter>> waiting;
        {
            std::lock_guard lock{mutex_};
            shut_ = true;
            waiting.swap(waiters_);
        }
        for (auto& w : waiting)
            w->complete(asio::error::operation_aborted, 0);
    }

private:
    struct Waiter {
        std::uint64_t id = 0;
        virtual ~Waiter() = default;
        virtual void complete(std::error_code ec, std::size_t slot) = 0;
    };

    template <class Handler>
    struct WaiterFor final : Waiter {
        WaiterFor(Handler h, const asio::any_io_executor& io)
            : handler(std::move(h)),
              work(asio::prefer(asio::get_associated_executor(handler, io),
                                asio::execution::outstanding_work.tracked))
        {
        }

        // Posted, never run inline: the caller may hold locks or be another coroutine.
        void complete(std::error_code ec, std::size_t slot) override
        {
            auto ex = work;
            asio::post(ex, [h = std::move(handler), w = std::move(work), ec, slot]() mutable {
                asio::get_associated_cancellation_slot(h).clear();
                std::move(h)(ec, slot);
            });
        }

        Handler handler;
        asio::any_io_executor work;  // keeps the waiter's context running while it waits
    };

    template <class Handler>
    void start(Handler handler)
    {
        auto cancel_slot = asio::get_associated_cancellation_slot(handler);
        auto waiter = std::make_unique<WaiterFor<Handler>>(std::move(handler), ex_);
        std::unique_lock lock{mutex_};
        if (shut_ || !free_.empty()) {
            std::error_code ec = shut_ ? asio::error::operation_aborted : std::error_code{};
            std::size_t slot = 0;
            if (!shut_) {
                slot = free_.back();
                free_.pop_back();
            }
            lock.unlock();
            waiter->complete(ec, slot);
            return;
        }
        const std::uint64_t id = waiter->id = ++last_id_;
        // Identified by id, not address: when the handler runs the waiter may already be gone.
        if (cancel_slot.is_connected())
            cancel_slot.assign([this, id](asio::cancellation_type) { cancel(id); });
        waiters_.push_back(std::move(waiter));
    }

    void cancel(std::uint64_t id)
    {
        std::unique_ptr<Waiter> found;
        {
            std::lock_guard lock{mutex_};
            for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
                if ((*it)->id == id) {
                    found = std::move(*it);
                    waiters_.erase(it);
                    break;
                }
            }
        }
        if (found)
            found->complete(asio::error::operation_aborted, 0);
    }

    asio::any_io_executor ex_;
    std::mutex mutex_;
    std::vector<std::size_t> free_;
    std::list<std::unique_ptr<Waiter>> waiters_;
    std::uint64_t last_id_ = 0;
    bool shut_ = false;
};

}  // namespace storage::detail
