#include "agent/agent.hpp"

#include "core/log.hpp"

#include <asio/experimental/awaitable_operators.hpp>

namespace agent {

using Clock = std::chrono::steady_clock;

core::Result<AgentOptions> make_options(const Config& c)
{
    auto server = parse_server_address(c.address);
    if (!server)
        return server.error();
    AgentOptions o;
    o.poll_interval = c.poll_interval;
    o.report_interval = c.report_interval;
    o.senders = static_cast<std::size_t>(c.rate_limit);
    o.queue_capacity = static_cast<std::size_t>(c.queue_size);
    o.shutdown_timeout = c.shutdown_timeout;
    o.sender.server = std::move(*server);
    o.sender.key = c.key;
    o.sender.client.connect_timeout = c.request_timeout;
    o.sender.client.io_timeout = c.request_timeout;
    o.sender.client.request_timeout = c.request_timeout;
    o.sender.client.limits.max_body = max_answer_bytes;
    return o;
}

Agent::Agent(asio::any_io_executor executor, AgentOptions options)
    : executor_(executor),
      options_(std::move(options)),
      queue_(executor, options_.queue_capacity, options_.senders),
      poll_timer_(executor),
      report_timer_(executor),
      senders_done_(executor),
      shutdown_deadline_(executor)
{
    for (std::size_t i = 0; i < options_.senders; ++i)
        senders_.push_back(std::make_unique<Sender>(executor, options_.sender));
}

void Agent::poll()
{
    // A failing source is logged when it starts failing, not at every poll.
    const auto note = [](core::Result<void> r, bool& failing, const char* what) {
        if (!r && !failing)
            core::log::warn("cannot read {} metrics: {}", what, core::message(r.error()));
        failing = !r;
    };
    note(process_.collect(table_), process_failing_, "process");
    note(system_.collect(table_), system_failing_, "system");
    random_.collect(table_);
    table_.add_counter("PollCount", 1);
    ++polls_;
}

void Agent::report()
{
    if (table_.empty())
        return;
    auto evicted = queue_.push(table_.take_batch());
    if (evicted) {
        undelivered(*evicted);
        core::log::warn("report queue full ({} batches): dropped report {}, {} dropped so far", options_.queue_capacity,
                        evicted->sequence, queue_.dropped());
    }
}

void Agent::undelivered(const Batch& batch)
{
    // Its counts are reported again with the next batch, so none is lost or counted twice.
    table_.give_back(batch);
}

asio::awaitable<void> Agent::poll_loop()
{
    auto next = Clock::now();
    while (!stopping_) {
        poll();
        // Fixed rate, not fixed delay; after a stall (suspend) it resumes instead of catching up.
        next = std::max(next + options_.poll_interval, Clock::now());
        poll_timer_.expires_at(next);
        co_await poll_timer_.async_wait(core::use_nothrow_awaitable);
    }
}

asio::awaitable<void> Agent::report_loop()
{
    auto next = Clock::now();
    while (!stopping_) {
        next = std::max(next + options_.report_interval, Clock::now());
        report_timer_.expires_at(next);
        co_await report_timer_.async_wait(core::use_nothrow_awaitable);
        if (stopping_)
            co_return;
        report();
    }
}

asio::awaitable<void> Agent::run()
{
    using namespace asio::experimental::awaitable_operators;
    senders_running_ = senders_.size();
    senders_done_.expires_at(Clock::time_point::max());
    for (auto& sender : senders_) {
        // The Agent outlives run(), which waits for every sender.
        asio::co_spawn(executor_, sender->run(queue_, [this](const Batch& b) { undelivered(b); }),
                       [this](std::exception_ptr e) {
                           if (e) {
                               try {
                                   std::rethrow_exception(e);
                               } catch (const std::exception& ex) {
                                   core::log::error("sender failed: {}", ex.what());
                               }
                           }
                           if (--senders_running_ == 0)
                               senders_done_.cancel();
                       });
    }
    core::log::info("metrics-agent {}: polling every {} ms, reporting every {} ms to {}:{} with {} sender(s)",
                    METRICS_VERSION, options_.poll_interval.count(), options_.report_interval.count(),
                    options_.sender.server.host, options_.sender.server.port, senders_.size());

    co_await (poll_loop() && report_loop());

    // Shutdown: what was polled since the last report goes out too.
    report();
    queue_.close();
    for (auto& sender : senders_)
        sender->stop();
    shutdown_deadline_.expires_after(abandoned_ ? std::chrono::milliseconds::zero() : options_.shutdown_timeout);
    if (senders_running_ > 0) {
        auto done = co_await (senders_done_.async_wait(core::use_nothrow_awaitable) ||
                              shutdown_deadline_.async_wait(core::use_nothrow_awaitable));
        if (done.index() == 1) {
            if (abandoned_)
                core::log::warn("shutdown: signalled again, abandoning {} report(s)", queue_.size() + senders_running_);
            else
                core::log::warn("shutdown: {} report(s) not delivered within {} ms", queue_.size() + senders_running_,
                                options_.shutdown_timeout.count());
            for (auto& sender : senders_)
                sender->abort();
            senders_done_.expires_at(Clock::time_point::max());
            if (senders_running_ > 0)
                co_await senders_done_.async_wait(core::use_nothrow_awaitable);
        }
    }
    core::log::info("stopped after {} polls", polls_);
}

void Agent::abandon()
{
    stop();
    if (abandoned_)
        return;
    abandoned_ = true;
    shutdown_deadline_.cancel();  // ends run()'s wait for the senders, if it has begun
}

void Agent::stop()
{
    if (stopping_)
        return;
    stopping_ = true;
    poll_timer_.cancel();
    report_timer_.cancel();
    for (auto& sender : senders_)
        sender->stop();
}

}  // namespace agent
