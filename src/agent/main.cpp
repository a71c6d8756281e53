// metrics-agent: wires configuration, signals and the agent pipeline on one thread.
#include "agent/agent.hpp"
#include "agent/config.hpp"
#include "codec/sealed_box.hpp"
#include "core/log.hpp"

#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <functional>

int main(int argc, char** argv)
{
    // Blocks of 128 KiB and more (the gzip compressor of each report) are mapped and unmapped,
    // never kept in the heap: a fixed threshold turns off glibc's adaptive one, which would
    // otherwise rise to the first such block freed and keep the next ones resident.
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    agent::Config config;
    if (auto exit = agent::load_config(argc, argv, config))
        return *exit;
    core::log::configure(config.log_format, config.log_level);  // both checked by load_config
    auto options = agent::make_options(config);
    if (!options) {
        std::fprintf(stderr, "metrics-agent: invalid server address \"%s\"\n", config.address.c_str());
        return 2;
    }
    if (!config.crypto_key.empty()) {
        // Fail closed: reports never go out unencrypted when encryption was asked for.
        codec::PublicKey server_key;
        if (auto error = codec::load_public_key(config.crypto_key, server_key); !error.empty()) {
            std::fprintf(stderr, "metrics-agent: -crypto-key: %s\n", error.c_str());
            return 1;
        }
        options->sender.seal_to = server_key;
    }
    std::signal(SIGPIPE, SIG_IGN);

    asio::io_context ioc{1};
    // Installed before anything else runs, even if the parent left these signals ignored.
    asio::signal_set signals{ioc, SIGINT, SIGTERM, SIGQUIT};
    agent::Agent agent{ioc.get_executor(), std::move(*options)};
    // The first signal sends what is pending (within the shutdown timeout); another one, while
    // that runs, gives up at once.
    std::function<void(std::error_code, int)> on_signal = [&](std::error_code ec, int signo) {
        if (ec)
            return;
        if (agent.stopping()) {
            core::log::info("signal {} during shutdown: stopping now", signo);
            agent.abandon();
        } else {
            core::log::info("signal {}: sending what is pending, then stopping", signo);
            agent.stop();
        }
        signals.async_wait(on_signal);
    };
    signals.async_wait(on_signal);
    int status = 0;
    asio::co_spawn(ioc, agent.run(), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                core::log::error("metrics-agent failed: {}", ex.what());
            }
            status = 1;
        }
        signals.cancel();
    });
    ioc.run();
    return status;
}
