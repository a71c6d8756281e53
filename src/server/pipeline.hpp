#pragma once

#include "codec/sealed_box.hpp"
#include "server/audit.hpp"
#include "server/config.hpp"
#include "server/middleware.hpp"
#include "server/self_metrics.hpp"
#include "server/subnet.hpp"
#include "storage/storage.hpp"

#include <memory>

namespace server {

/// What main prepares from the configuration before the chain is built (each optional).
struct Security {
    std::optional<Subnet> trusted_subnet;  ///< -t
    const codec::KeyPair* keys = nullptr;  ///< -crypto-key: the server's key pair
    AuditHub* audit = nullptr;             ///< -audit-file, -audit-url: the hub with their sinks
};

/// Builds the middleware chain and router once from the configuration; a feature that is off
/// costs nothing per request. `storage` and what `security` points to outlive the pipeline.
/// `self`, when given, counts every request and adds its figures to /metrics.
std::unique_ptr<Pipeline> make_pipeline(const Config& config, storage::Storage& storage,
                                        const Security& security = {}, SelfMetrics* self = nullptr);

}  // namespace server
