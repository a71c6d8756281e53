#pragma once

#include "core/result.hpp"

#include <asio/ip/tcp.hpp>

#include <string_view>

namespace server {

/// `host:port`, `http://host:port`, `:port` (all interfaces), `[v6]:port`. A host name is
/// resolved now (first IPv4 address preferred). Malformed or unresolvable: Errc::bad_value.
core::Result<asio::ip::tcp::endpoint> resolve_listen_address(std::string_view address);

}  // namespace server
