#pragma once

#include "server/config.hpp"
#include "server/middleware.hpp"
#include "storage/storage.hpp"

#include <memory>

namespace server {

/// Builds the middleware chain and router once from the configuration; a feature that is off
/// costs nothing per request. `storage` outlives the pipeline.
std::unique_ptr<Pipeline> make_pipeline(const Config& config, storage::Storage& storage);

}  // namespace server
