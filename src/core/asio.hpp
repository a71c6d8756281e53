#pragma once

// Shims over Asio 1.22 (our floor: no cancel_after, no default completion token).
//
// A co_await is always its own statement, never inside a condition or a conditional expression
// (`if (co_await x)`, `a ? b : co_await c`): GCC 12 miscompiles some of those coroutine frames
// (the coroutine traps on ud2 at run time). Call sites say "a statement: see core/asio.hpp".

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include <chrono>
#include <system_error>

namespace core {

/// Where as_tuple and deferred live: Asio 1.24 moved them out of `experimental`, and with
/// ASIO_NO_DEPRECATED the old names are gone (Debian 12 has 1.22, subprojects/asio.wrap 1.24).
#if ASIO_VERSION >= 102400
namespace asio_tokens = ::asio;
#else
namespace asio_tokens = ::asio::experimental;
#endif

using asio::awaitable;
using asio::use_awaitable;
/// Completion token that returns (error_code, results...) instead of throwing.
constexpr auto use_nothrow_awaitable = asio_tokens::as_tuple(asio::use_awaitable);

/// Waits for `op` or the deadline, whichever comes first; on timeout the operation is
/// cancelled and `asio::error::timed_out` is returned. `op` must be an awaitable<T> whose result
/// is a std::tuple<std::error_code, ...> (use `use_nothrow_awaitable`).
template <class T, class Duration>
awaitable<T> with_timeout(awaitable<T> op, Duration timeout)
{
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer{co_await asio::this_coro::executor};
    timer.expires_after(timeout);
    auto result = co_await (std::move(op) || timer.async_wait(use_nothrow_awaitable));
    if (result.index() == 0)
        co_return std::get<0>(std::move(result));
    T timed_out{};
    std::get<0>(timed_out) = asio::error::timed_out;
    co_return timed_out;
}

}  // namespace core
