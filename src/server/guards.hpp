#pragma once

// Middleware that guards the server's door: the trusted subnet and sealed-box decryption.
// Each is built only when configured (pipeline.cpp), so a feature that is off costs nothing.

#include "codec/sealed_box.hpp"
#include "server/middleware.hpp"
#include "server/subnet.hpp"

namespace server {

/// -t/TRUSTED_SUBNET: a request whose X-Real-IP is missing, malformed or outside the subnet is
/// answered 403 before any layer looks at its body. X-Real-IP is asserted by the client
/// (docs/OPERATIONS.md): the check is only as trustworthy as the network path to the server.
class TrustedSubnet final : public Middleware {
public:
    explicit TrustedSubnet(Subnet subnet) : subnet_(subnet) {}
    Flow before(Exchange& ex) const override;

private:
    Subnet subnet_;
};

/// -crypto-key on the server: a request with `X-Encrypted: sealed-box` carries a sealed box
/// addressed to this server's key pair; its opened contents replace the body for the layers
/// inside (gunzip, router). A box that does not open: 400. A request without the header passes
/// untouched (plain requests stay accepted); another X-Encrypted value: 400.
class OpenSealedBox final : public Middleware {
public:
    /// `keys` outlives the middleware (owned by main).
    explicit OpenSealedBox(const codec::KeyPair& keys) : keys_(keys) {}
    Flow before(Exchange& ex) const override;

private:
    const codec::KeyPair& keys_;
};

}  // namespace server
