#pragma once

#include "http/message.hpp"

#include <cstdint>
#include <string_view>

namespace server {

/// What an endpoint does (the router's handler for it).
enum class Route : std::uint8_t {
    update_json,   ///< POST /update/
    update_batch,  ///< POST /updates/
    value_json,    ///< POST /value/ (read), DELETE /value/ (remove)
    values,        ///< GET /values/
    update_url,    ///< POST /update/{kind}/{name}/{value}
    value_url,     ///< GET /value/{kind}/{name} (read), DELETE (remove)
    index,         ///< GET /
    ping,          ///< GET /ping
    metrics,       ///< GET /metrics
};

/// The methods an endpoint accepts, as bits (GET includes HEAD).
namespace methods {
constexpr std::uint8_t get = 1;
constexpr std::uint8_t post = 2;
constexpr std::uint8_t delete_ = 4;
}  // namespace methods

/// One endpoint of docs/API.md: what the router, RequireJson and the 405 answers read.
struct Endpoint {
    std::string_view path;   ///< the whole path, or its fixed start when `prefix`
    bool prefix;             ///< parameters follow the fixed start ("/value/{kind}/{name}")
    std::uint8_t methods;    ///< methods::* bits
    std::string_view allow;  ///< the Allow header of a 405: every method of `methods`
    bool json;               ///< a request body must be Content-Type: application/json (else 415)
    bool waits;              ///< lists the store or asks its health: always awaited, no plain path
    Route route;
};

/// Every endpoint. A path matches at most one row (a prefix row needs more than its fixed part,
/// a whole-path row exactly it: "/update/" is the JSON endpoint, "/update/gauge/x/1" the URL
/// one), so the order only decides speed: the busiest first, since the lookup runs on every
/// request.
inline constexpr Endpoint endpoints[] = {
    {"/update/", true, methods::post, "POST", false, false, Route::update_url},
    {"/update/", false, methods::post, "POST", true, false, Route::update_json},
    {"/updates/", false, methods::post, "POST", true, false, Route::update_batch},
    {"/value/", true, methods::get | methods::delete_, "GET, HEAD, DELETE", false, false, Route::value_url},
    {"/value/", false, methods::post | methods::delete_, "POST, DELETE", true, false, Route::value_json},
    {"/values/", false, methods::get, "GET, HEAD", false, true, Route::values},
    {"/", false, methods::get, "GET, HEAD", false, true, Route::index},
    {"/ping", false, methods::get, "GET, HEAD", false, true, Route::ping},
    {"/metrics", false, methods::get, "GET, HEAD", false, true, Route::metrics},
};

/// The longest path of an endpoint whose body is JSON (all of them whole paths): a longer path
/// needs no lookup to know it is not one.
inline constexpr std::size_t longest_json_path = [] {
    std::size_t n = 0;
    for (const Endpoint& e : endpoints)
        if (e.json)
            n = e.path.size() > n ? e.path.size() : n;
    return n;
}();

/// The endpoint of `path`, or nullptr (404).
const Endpoint* find_endpoint(std::string_view path) noexcept;

/// Whether `e` accepts `m` (HEAD wherever GET is).
bool accepts(const Endpoint& e, http::Method m) noexcept;

}  // namespace server
