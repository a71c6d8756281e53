#include "server/endpoints.hpp"

#include "core/bytes.hpp"

namespace server {

// Every fixed path is at most 16 bytes: core::bytes::equal_short compares them inline, where
// string_view's == is a memcmp call on every request.
static_assert([] {
    for (const Endpoint& e : endpoints)
        if (e.path.size() > 16)
            return false;
    return true;
}());

const Endpoint* find_endpoint(std::string_view path) noexcept
{
    for (const Endpoint& e : endpoints) {
        const std::size_t n = e.path.size();
        const bool fits = e.prefix ? path.size() > n : path.size() == n;
        if (fits && core::bytes::equal_short(path.data(), e.path.data(), n))
            return &e;
    }
    return nullptr;
}

bool accepts(const Endpoint& e, http::Method m) noexcept
{
    switch (m) {
    case http::Method::get:
    case http::Method::head:
        return (e.methods & methods::get) != 0;
    case http::Method::post:
        return (e.methods & methods::post) != 0;
    case http::Method::delete_:
        return (e.methods & methods::delete_) != 0;
    default:
        return false;
    }
}

}  // namespace server
