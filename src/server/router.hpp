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

/// Maps method and path to the endpoints of docs/API.md (server/endpoints.hpp) and runs them
/// against the storage: each request is checked, reduced to one storage::Request (or a listing
/// or a ping), and answered from the storage's answer. Unknown paths: 404; a known path with
/// another method: 405 with Allow listing every method the path accepts.
class Router final : public Handler {
public:
    /// `storage` outlives the router (owned by main).
    Router(storage::Storage& storage, RouterLimits limits) : storage_(storage), limits_(limits) {}
    core::awaitable<void> operator()(Exchange& ex) const override;
    /// Every endpoint that does not wait (Endpoint::waits), when the storage answers at once.
    bool answers_now(const http::Request& request) const override;
    void answer_now(Exchange& ex) const override;

private:
    struct Call;
    using ListingWriter = void (*)(fmt::memory_buffer&, std::span<const core::OwnedMetric>);

    /// Checks method and path, parses the input, and says which storage call answers it; an
    /// error is answered here (Call::What::none). `json` lends a parser to the JSON routes.
    Call route(Exchange& ex, JsonLease& json) const;
    Call update_url(Exchange& ex, std::string_view rest) const;
    Call value_url(Exchange& ex, std::string_view rest, storage::Op op) const;
    Call update_json(Exchange& ex, core::JsonCodec& codec) const;
    Call value_json(Exchange& ex, core::JsonCodec& codec, storage::Op op) const;
    Call update_batch(Exchange& ex, JsonScratch& json) const;
    /// The answer once the storage has: "OK", the value as text, the metric or the batch as JSON.
    static void reply(Exchange& ex, const Call& call, const core::Result<core::Metric>& stored);
    static void reply_batch(Exchange& ex, std::span<const core::Metric> stored);

    storage::Storage& storage_;
    RouterLimits limits_;
};

}  // namespace server
