#include "server/pipeline.hpp"

#include "server/guards.hpp"
#include "server/router.hpp"

namespace server {

namespace {

/// With -require-hash: a request with a body and no HashSHA256 is refused with 401, missing
/// credentials (opt-in; the Go suite sends unsigned requests to a keyed server and expects them
/// accepted). A wrong HashSHA256 stays Signing's 400.
class RequireHash final : public Middleware {
public:
    Flow before(Exchange& ex) const override
    {
        if (!ex.request.body.empty() && !ex.request.header(http::Field::hash_sha256)) {
            ex.response.fail(401, "HashSHA256 required");
            return Flow::answered;
        }
        return Flow::next;
    }
};

}  // namespace

std::unique_ptr<Pipeline> make_pipeline(const Config& config, storage::Storage& storage, const Security& security,
                                        SelfMetrics* self)
{
    std::vector<std::unique_ptr<Middleware>> chain;
    // Outside even GuardExceptions: counts the 500 an exception became.
    if (self != nullptr)
        chain.push_back(std::make_unique<CountRequests>(self->http()));
    // Outermost: an unexpected exception becomes a 500, logged, and the connection goes on.
    chain.push_back(std::make_unique<GuardExceptions>());
    // Logs the final status and size, after every other layer has had its say.
    if (config.access_log)
        chain.push_back(std::make_unique<AccessLog>());
    // Refuses clients outside the trusted subnet before any layer spends work on the body.
    if (security.trusted_subnet)
        chain.push_back(std::make_unique<TrustedSubnet>(*security.trusted_subnet));
    // Checks HashSHA256 over the bytes as received, before anything decodes them; signs the
    // response after gzip so the hash covers the bytes as sent.
    if (!config.key.empty()) {
        if (config.require_hash)
            chain.push_back(std::make_unique<RequireHash>());
        chain.push_back(std::make_unique<Signing>(config.key));
    }
    // Opens sealed boxes after the signature over the sealed bytes is checked (encrypt-then-MAC)
    // and before gunzip, which undoes what the agent did before sealing.
    if (security.keys != nullptr)
        chain.push_back(std::make_unique<OpenSealedBox>(*security.keys));
    // JSON endpoints only accept JSON, checked before gunzip or a parser spend time on the body.
    chain.push_back(std::make_unique<RequireJson>());
    // Inflates gzip bodies (bounded) so that everything inside sees plain JSON.
    chain.push_back(std::make_unique<Gzip>(static_cast<std::size_t>(config.max_decoded_bytes)));
    // Innermost: sees the router's status and the ids it stored; only enqueues.
    if (security.audit != nullptr)
        chain.push_back(std::make_unique<Audit>(*security.audit));
    RouterLimits limits{static_cast<std::size_t>(config.max_batch)};
    return std::make_unique<Pipeline>(std::move(chain), std::make_unique<Router>(storage, limits, self));
}

}  // namespace server
