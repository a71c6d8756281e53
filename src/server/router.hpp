#pragma once

#include "server/middleware.hpp"
#include "storage/storage.hpp"

namespace server {

struct RouterLimits {
    std::size_t max_batch = 10000;  ///< metrics in one /updates/ request (413 beyond)
};

/// Maps method and path to the API.md endpoints and runs them against the storage.
/// Unknown paths: 404; a known path with another method: 405 with Allow.
class Router final : public Handler {
public:
    /// `storage` outlives the router (owned by main).
    Router(storage::Storage& storage, RouterLimits limits) : storage_(storage), limits_(limits) {}
    core::awaitable<void> operator()(Exchange& ex) const override;

private:
    core::awaitable<void> update_url(Exchange& ex, std::string_view rest) const;
    core::awaitable<void> value_url(Exchange& ex, std::string_view rest) const;
    core::awaitable<void> update_json(Exchange& ex) const;
    core::awaitable<void> value_json(Exchange& ex) const;
    core::awaitable<void> update_batch(Exchange& ex) const;
    using ListingWriter = void (*)(fmt::memory_buffer&, std::span<const core::OwnedMetric>);
    /// `/` and `/metrics`: every metric, written by `write` as `type`.
    core::awaitable<void> listing(Exchange& ex, std::string_view type, ListingWriter write) const;
    core::awaitable<void> ping(Exchange& ex) const;

    storage::Storage& storage_;
    RouterLimits limits_;
};

/// Prometheus text exposition 0.0.4 of `metrics` (sorted by id): names sanitised to
/// [a-zA-Z_:][a-zA-Z0-9_:]*, counters with the `_total` suffix. Exposed for tests.
void write_prometheus(fmt::memory_buffer& out, std::span<const core::OwnedMetric> metrics);
/// The HTML5 page of `/`: one table row per metric, names escaped.
void write_index_html(fmt::memory_buffer& out, std::span<const core::OwnedMetric> metrics);

}  // namespace server
