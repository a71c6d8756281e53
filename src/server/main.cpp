// metrics-server: wires configuration, storage, the middleware pipeline and the listener.
#include "codec/sealed_box.hpp"
#include "core/log.hpp"
#include "server/audit.hpp"
#include "server/address.hpp"
#include "server/config.hpp"
#include "server/listener.hpp"
#include "server/pipeline.hpp"
#include "server/self_metrics.hpp"
#include "server/subnet.hpp"
#include "storage/memory.hpp"
#include "storage/persistent.hpp"
#include "storage/postgres.hpp"
#include "storage/snapshot.hpp"

#include <csignal>
#include <cstdio>
#include <future>
#include <optional>
#include <memory>
#include <thread>
#include <vector>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace {

using namespace std::chrono_literals;

/// The trusted subnet, key pair and audit hub the configuration asks for, ready before the
/// pipeline is built. Owned by main; the pipeline keeps pointers into it.
struct Protections {
    server::Security security;
    std::optional<codec::KeyPair> keys;
    std::unique_ptr<server::AuditHub> audit;
};

/// Startup errors come back as one line for stderr (fail closed: nothing starts half protected).
std::string prepare_protections(const server::Config& c, Protections& p)
{
    if (!c.trusted_subnet.empty()) {
        auto subnet = server::Subnet::parse(c.trusted_subnet);
        if (!subnet)
            return "invalid -t/TRUSTED_SUBNET \"" + c.trusted_subnet +
                   "\": expected a CIDR such as 10.0.0.0/8 or fd00::/8";
        p.security.trusted_subnet = *subnet;
    }
    if (!c.crypto_key.empty()) {
        if (auto error = codec::load_private_key(c.crypto_key, p.keys); !error.empty())
            return "-crypto-key: " + error;
        p.security.keys = &*p.keys;
    }
    if (c.audit_file.empty() && c.audit_url.empty())
        return {};
    p.audit = std::make_unique<server::AuditHub>(static_cast<std::size_t>(c.audit_queue));
    if (!c.audit_file.empty()) {
        std::string error;
        auto sink = server::FileSink::open(c.audit_file, error);
        if (!sink)
            return error;
        p.audit->add(std::move(sink));
    }
    if (!c.audit_url.empty()) {
        auto url = server::parse_http_url(c.audit_url);
        if (!url)
            return "invalid -audit-url/AUDIT_URL \"" + c.audit_url + "\": expected http://host[:port][/path]";
        p.audit->add(std::make_unique<server::UrlSink>(std::move(*url), c.audit_timeout));
    }
    p.security.audit = p.audit.get();
    return {};
}

/// SIGHUP: audit files are reopened (log rotation). Runs until the signal set is cancelled.
/// SIGHUP (`systemctl reload`) reopens the audit file, which rotation may have moved away, and
/// re-reads nothing else: configuration changes need a restart. Without an audit file it only
/// logs, so that a reload never stops the daemon.
asio::awaitable<void> reopen_on_hangup(asio::signal_set& hangup, server::AuditHub* audit)
{
    for (;;) {
        auto [ec, signo] = co_await hangup.async_wait(core::use_nothrow_awaitable);
        if (ec)
            co_return;
        if (audit != nullptr) {
            core::log::info("signal {}: reopening the audit file", signo);
            audit->reopen();
        } else {
            core::log::info("signal {}: nothing to reopen", signo);
        }
    }
}

/// The storage chosen by the configuration: PostgreSQL, memory with snapshots, or memory.
struct Storages {
    std::unique_ptr<storage::MemoryStorage> memory;
    std::unique_ptr<storage::MemoryMap> map;  ///< the durable store's
    std::unique_ptr<storage::SnapshotFile> snapshot;
    std::unique_ptr<storage::Storage> front;  ///< what handlers use, when not `memory` itself
    storage::Storage* active = nullptr;
};

storage::MapOptions map_options(const server::Config& c)
{
    return {.ttl = c.metric_ttl, .max_metrics = static_cast<std::size_t>(c.max_metrics)};
}

/// Startup errors come back as one line for stderr.
std::string open_storage(asio::io_context& ioc, const server::Config& c, Storages& s)
{
    if (!c.database_dsn.empty()) {
        storage::PostgresOptions options;
        options.pool_size = static_cast<std::size_t>(c.database_pool);
        options.max_waiting = static_cast<std::size_t>(c.database_queue);
        options.connect_timeout = c.database_timeout;
        options.query_timeout = c.database_timeout;
        options.ping_timeout = std::min(options.ping_timeout, c.database_timeout);
        options.request_timeout = c.request_timeout;
        options.metric_ttl = c.metric_ttl;
        options.max_metrics = static_cast<std::size_t>(c.max_metrics);
        // co_spawn needs a default-constructible result: the coroutine fills an optional instead.
        std::optional<core::Result<std::unique_ptr<storage::PostgresStorage>>> opened;
        auto open = [&]() -> asio::awaitable<void> {
            opened.emplace(co_await storage::PostgresStorage::open(ioc.get_executor(), c.database_dsn, options));
        };
        asio::co_spawn(ioc, open(), asio::use_future).get();
        if (!*opened)
            return "cannot use DATABASE_DSN: " + std::string{core::message(opened->error())};
        s.front = std::move(**opened);
        s.active = s.front.get();
        core::log::info("storage: PostgreSQL");
        return {};
    }
    if (c.store_file.empty()) {
        s.memory = std::make_unique<storage::MemoryStorage>(map_options(c));
        s.active = s.memory.get();
        core::log::info("storage: memory only (no snapshot file)");
        return {};
    }
    s.map = std::make_unique<storage::MemoryMap>(map_options(c));
    s.snapshot = std::make_unique<storage::SnapshotFile>(c.store_file);
    storage::DurableOptions options;
    options.interval = c.store_interval;
    options.restore = c.restore;
    if (c.metric_ttl.count() > 0)  // as sweep_expired below: about ten steps per ttl
        options.sweep_every = std::clamp(c.metric_ttl / 10, std::chrono::milliseconds{10}, options.sweep_every);
    std::string error;
    auto durable = storage::PersistentStorage::open(ioc.get_executor(), *s.map, *s.snapshot, options, error);
    if (!durable)
        return error;
    core::log::info("restored {} metrics from {} and {} log records from {}.wal", durable->restored().snapshot_metrics,
                    c.store_file, durable->restored().log.records, c.store_file);
    s.front = std::move(durable);
    s.active = s.front.get();
    core::log::info("storage: memory, write-ahead log {}.wal synced {}, snapshots to {}", c.store_file,
                    c.store_interval.count() == 0 ? std::string{"before each answer"}
                                                  : fmt::format("every {} ms", c.store_interval.count()),
                    c.store_file);
    return {};
}

/// Removes expired metrics in the background: a step of bounded work (sweep_budget slots of the
/// map) every sweep_period, or ten steps per ttl when the ttl is shorter, so that a metric is
/// removed within about a ttl of expiring while the map is small.
asio::awaitable<void> sweep_expired(storage::MemoryStorage& memory, std::chrono::milliseconds ttl)
{
    constexpr std::size_t sweep_budget = 16384;
    constexpr std::chrono::milliseconds sweep_period = 1s;
    const auto period = std::clamp(ttl / 10, std::chrono::milliseconds{10}, sweep_period);
    co_await memory.sweep_expired(period, sweep_budget);
}

/// Waits for a stop signal, then: stop accepting, let in-flight requests finish within the
/// grace period, deliver queued audit events within what is left of it, close the storage
/// (final snapshot), stop the io_context.
asio::awaitable<void> shutdown_on_signal(asio::io_context& ioc, asio::signal_set& signals, server::Listener& listener,
                                         storage::Storage& storage, server::AuditHub* audit,
                                         std::chrono::milliseconds grace)
{
    auto [ec, signo] = co_await signals.async_wait(core::use_nothrow_awaitable);
    if (!ec)
        core::log::info("signal {}: shutting down", signo);
    listener.stop();
    asio::steady_timer timer{co_await asio::this_coro::executor};
    const auto until = std::chrono::steady_clock::now() + grace;
    while (listener.active() > 0 && std::chrono::steady_clock::now() < until) {
        timer.expires_after(10ms);
        co_await timer.async_wait(core::use_nothrow_awaitable);
    }
    if (listener.active() > 0)
        core::log::warn("{} connections still open after the grace period", listener.active());
    if (audit != nullptr)
        co_await audit->close(until);
    co_await storage.close();
    core::log::info("stopped");
    ioc.stop();
}

/// A large request's buffers (a gunzipped body, a /metrics answer) are freed once it is
/// answered. glibc raises its mmap threshold to the size of each mapped block freed, so later
/// large buffers come from the heap, which keeps their pages after free: 40 connections that had
/// each sent a gzip bomb left 70 MB resident. A fixed threshold maps every large buffer and unmaps
/// it at free (bench/connection_costs.py bombs; figures in docs/PROFILING.md).
void return_large_buffers_to_the_system()
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
}

}  // namespace

int main(int argc, char** argv)
{
    server::Config config;
    if (auto exit = server::load_config(argc, argv, config))
        return *exit;
    core::log::configure(config.log_format, config.log_level);  // both checked by load_config
    auto endpoint = server::resolve_listen_address(config.address);
    if (!endpoint) {
        std::fprintf(stderr, "metrics-server: invalid listen address \"%s\"\n", config.address.c_str());
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    return_large_buffers_to_the_system();

    const unsigned threads =
        config.threads > 0 ? static_cast<unsigned>(config.threads) : std::max(1u, std::thread::hardware_concurrency());
    asio::io_context ioc{static_cast<int>(threads)};
    // Installed before anything can fail slowly, even if the parent left these ignored.
    asio::signal_set signals{ioc, SIGINT, SIGTERM, SIGQUIT};

    auto work = asio::make_work_guard(ioc);
    std::vector<std::thread> pool;
    for (unsigned i = 0; i < threads; ++i)
        pool.emplace_back([&ioc] { ioc.run(); });
    const auto join_all = [&] {
        work.reset();
        ioc.stop();
        for (auto& t : pool)
            t.join();
    };

    Protections protections;
    if (auto error = prepare_protections(config, protections); !error.empty()) {
        std::fprintf(stderr, "metrics-server: %s\n", error.c_str());
        join_all();
        return 1;
    }
    Storages storages;
    if (auto error = open_storage(ioc, config, storages); !error.empty()) {
        std::fprintf(stderr, "metrics-server: %s\n", error.c_str());
        join_all();
        return 1;
    }
    server::SelfMetrics self{METRICS_VERSION};
    self.set_sources(storages.active, protections.audit.get());
    auto pipeline = server::make_pipeline(config, *storages.active, protections.security, &self);
    server::Listener listener{ioc, *pipeline, config.connection_limits(), &self.http()};
    try {
        listener.listen(*endpoint);
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "metrics-server: cannot listen on %s: %s\n", config.address.c_str(), e.what());
        asio::co_spawn(ioc, storages.active->close(), asio::use_future).get();
        join_all();
        return 1;
    }
    const auto local = listener.local_endpoint();
    core::log::info("metrics-server {} listening on {}:{} with {} threads", METRICS_VERSION,
                    local.address().to_string(), local.port(), threads);

    asio::signal_set hangup{ioc, SIGHUP};
    if (protections.audit)
        protections.audit->start(ioc.get_executor());
    asio::co_spawn(ioc, reopen_on_hangup(hangup, protections.audit.get()), asio::detached);
    asio::co_spawn(ioc, listener.run(), asio::detached);
    if (storages.memory && config.metric_ttl.count() > 0)
        asio::co_spawn(ioc, sweep_expired(*storages.memory, config.metric_ttl), asio::detached);
    asio::co_spawn(ioc,
                   shutdown_on_signal(ioc, signals, listener, *storages.active, protections.audit.get(),
                                      config.shutdown_grace),
                   asio::detached);
    work.reset();
    for (auto& t : pool)
        t.join();
    return 0;
}
