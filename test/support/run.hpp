#pragma once

#include "core/asio.hpp"

#include <exception>
#include <optional>
#include <stdexcept>

namespace test {

/// Runs a coroutine to completion on a fresh io_context and returns its result; rethrows its
/// exception; fails if work is left over after it finished.
template <class T>
T run(asio::awaitable<T> coro)
{
    asio::io_context ioc;
    std::exception_ptr error;
    std::optional<T> value;
    asio::co_spawn(ioc, std::move(coro), [&](std::exception_ptr e, T v) {
        error = e;
        if (!e)
            value.emplace(std::move(v));
    });
    ioc.run();
    if (error)
        std::rethrow_exception(error);
    if (!value)
        throw std::runtime_error("coroutine did not complete");
    return std::move(*value);
}

inline void run(asio::awaitable<void> coro)
{
    asio::io_context ioc;
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(ioc, std::move(coro), [&](std::exception_ptr e) {
        error = e;
        done = true;
    });
    ioc.run();
    if (error)
        std::rethrow_exception(error);
    if (!done)
        throw std::runtime_error("coroutine did not complete");
}

}  // namespace test
