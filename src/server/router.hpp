#pragma once

#include "server/middleware.hpp"
#include "storage/storage.hpp"

namespace core {
class JsonCodec;
}

namespace server {

class JsonLease;
struct JsonScratch;

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
    /// Every route but `/`, `/metrics` and `/ping`, when the storage answers at once.
    bool answers_now(const http::Request& request) const override;
    void answer_now(Exchange& ex) const override;

private:
    struct Call;
    using ListingWriter = void (*)(fmt::memory_buffer&, std::span<const core::OwnedMetric>);

    /// Checks method and path, parses the input, and says which storage call answers it; an
    /// error is answered here (Call::Op::none). `json` lends a parser to the JSON routes.
    Call route(Exchange& ex, JsonLease& json) const;
    Call update_url(Exchange& ex, std::string_view rest) const;
    Call value_url(Exchange& ex, std::string_view rest) const;
    Call update_json(Exchange& ex, core::JsonCodec& codec) const;
    Call value_json(Exchange& ex, core::JsonCodec& codec) const;
    Call update_batch(Exchange& ex, JsonScratch& json) const;
    /// The answer once the storage has: "OK", the value as text, or the metric as JSON.
    static void reply(Exchange& ex, const Call& call, const core::Result<core::Metric>& stored);
    static void reply_batch(Exchange& ex, std::span<const core::Metric> stored, const core::Result<void>& r);

    storage::Storage& storage_;
    RouterLimits limits_;
};

/// Prometheus text exposition 0.0.4 of `metrics` (sorted by id): one family per sanitised
/// name ([a-zA-Z_:][a-zA-Z0-9_:]*), counters with the suffix `_total`, gauges never ending in
/// it (`_gauge` is appended), so no family holds both kinds; a sample whose family is not
/// named after its id carries the id as the label `id`. Exposed for tests.
void write_prometheus(fmt::memory_buffer& out, std::span<const core::OwnedMetric> metrics);
/// The HTML5 page of `/`: one table row per metric, names escaped.
void write_index_html(fmt::memory_buffer& out, std::span<const core::OwnedMetric> metrics);

}  // namespace server
