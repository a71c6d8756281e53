#include "server/pipeline.hpp"

#include "server/router.hpp"

namespace server {

namespace {

/// With -require-hash: a request with a body and no HashSHA256 is refused (opt-in; the Go
/// suite sends unsigned requests to a keyed server and expects them accepted).
class RequireHash final : public Middleware {
public:
    Flow before(Exchange& ex) const override
    {
        if (!ex.request.body.empty() && !ex.request.header(http::Field::hash_sha256)) {
            ex.response.fail(400, "HashSHA256 required");
            return Flow::answered;
        }
        return Flow::next;
    }
};

}  // namespace

std::unique_ptr<Pipeline> make_pipeline(const Config& config, storage::Storage& storage)
{
    std::vector<std::unique_ptr<Middleware>> chain;
    // Outermost: an unexpected exception becomes a 500, logged, and the connection goes on.
    chain.push_back(std::make_unique<GuardExceptions>());
    // Logs the final status and size, after every other layer has had its say.
    if (config.access_log)
        chain.push_back(std::make_unique<AccessLog>());
    // Checks HashSHA256 over the bytes as received, before anything decodes them; signs the
    // response after gzip so the hash covers the bytes as sent.
    if (!config.key.empty()) {
        if (config.require_hash)
            chain.push_back(std::make_unique<RequireHash>());
        chain.push_back(std::make_unique<Signing>(config.key));
    }
    // JSON endpoints only accept JSON, checked before gunzip or a parser spend time on the body.
    chain.push_back(std::make_unique<RequireJson>());
    // Inflates gzip bodies (bounded) so that everything inside sees plain JSON.
    chain.push_back(std::make_unique<Gzip>(static_cast<std::size_t>(config.max_decoded_bytes)));
    RouterLimits limits{static_cast<std::size_t>(config.max_batch)};
    return std::make_unique<Pipeline>(std::move(chain), std::make_unique<Router>(storage, limits));
}

}  // namespace server
