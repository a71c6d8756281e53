#pragma once

#include "agent/batch_queue.hpp"
#include "agent/collectors.hpp"
#include "agent/config.hpp"
#include "agent/sender.hpp"
#include "agent/table.hpp"

#include "core/asio.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace agent {

struct AgentOptions {
    std::chrono::milliseconds poll_interval{2000};
    std::chrono::milliseconds report_interval{10000};
    std::size_t senders = 1;
    std::size_t queue_capacity = 16;
    std::chrono::milliseconds shutdown_timeout{5000};
    SenderOptions sender;
};

/// The largest answer to /updates/ the agent reads (the server echoes the batch: a few KiB);
/// a larger one is an error, so a server streaming without end costs at most this much.
constexpr std::size_t max_answer_bytes = 1 << 20;

/// Builds the agent's options from its configuration; a bad address is Errc::bad_value.
core::Result<AgentOptions> make_options(const Config& config);

/// The agent's pipeline (docs/ARCHITECTURE.md, "Agent"): a poll timer runs the collectors into the
/// table, a report timer turns the table into a batch for the bounded queue, and `senders`
/// coroutines deliver batches. Everything runs on one thread: the executor must not be run by
/// several threads. The Agent must outlive `run()`.
class Agent {
public:
    Agent(asio::any_io_executor executor, AgentOptions options);

    /// Polls and reports until `stop()`, then reports once more and gives pending batches one
    /// attempt each within `shutdown_timeout`. Returns when every sender has finished.
    asio::awaitable<void> run();
    /// Asks `run()` to finish (signal handler); safe to call more than once.
    void stop();
    /// stop() was called.
    bool stopping() const noexcept { return stopping_; }
    /// Ends the shutdown now (a second signal): requests in flight are closed, pending reports
    /// are not attempted; logs how many are abandoned. Implies stop().
    void abandon();

private:
    asio::awaitable<void> poll_loop();
    asio::awaitable<void> report_loop();
    void poll();
    void report();
    void undelivered(const Batch& batch);

    asio::any_io_executor executor_;
    AgentOptions options_;
    MetricTable table_;
    ProcessCollector process_;
    SystemCollector system_;
    RandomCollector random_;
    bool process_failing_ = false;
    bool system_failing_ = false;
    BatchQueue queue_;
    std::vector<std::unique_ptr<Sender>> senders_;
    std::size_t senders_running_ = 0;
    asio::steady_timer poll_timer_;
    asio::steady_timer report_timer_;
    asio::steady_timer senders_done_;  // cancelled when the last sender finishes
    asio::steady_timer shutdown_deadline_;  // cancelled by abandon()
    std::uint64_t polls_ = 0;
    bool stopping_ = false;
    bool abandoned_ = false;
};

}  // namespace agent
