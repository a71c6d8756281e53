#include "server/guards.hpp"

namespace server {

Middleware::Flow TrustedSubnet::before(Exchange& ex) const
{
    const auto header = ex.request.header("X-Real-IP");
    if (!header) {
        ex.response.fail(403, "X-Real-IP required");
        return Flow::answered;
    }
    const auto address = parse_ip(*header);
    if (!address) {
        ex.response.fail(403, "X-Real-IP is not an IP address");
        return Flow::answered;
    }
    if (!subnet_.contains(*address)) {
        ex.response.fail(403, "X-Real-IP outside the trusted subnet");
        return Flow::answered;
    }
    return Flow::next;
}

Middleware::Flow OpenSealedBox::before(Exchange& ex) const
{
    const auto how = ex.request.header("X-Encrypted");
    if (!how)
        return Flow::next;
    if (!http::iequals(*how, "sealed-box")) {
        ex.response.fail(400, "unsupported X-Encrypted");
        return Flow::answered;
    }
    if (!codec::open(keys_, ex.body, ex.scratch.opened_body)) {
        ex.response.fail(400, "sealed box does not open");
        return Flow::answered;
    }
    ex.body = ex.scratch.opened_body;
    return Flow::next;
}

}  // namespace server
