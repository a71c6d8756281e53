#pragma once

#include "core/result.hpp"

#include <asio/ip/address.hpp>

#include <string>
#include <string_view>

namespace server {

/// An IP address in its textual form as a client asserts it (X-Real-IP): IPv4 dotted decimal
/// (four decimal parts, no leading zeros beyond inet_pton's rules) or IPv6 (RFC 4291 text, no
/// zone id, no brackets, no port). No allocation. Anything else: Errc::bad_value.
core::Result<asio::ip::address> parse_ip(std::string_view text) noexcept;

/// An IPv4 or IPv6 network from CIDR text (`10.0.0.0/8`, `fd00::/8`). Host bits after the
/// prefix are ignored (`10.1.2.3/8` is `10.0.0.0/8`), as Go's net.ParseCIDR does. An
/// IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) is the IPv4 address it maps, on both sides.
class Subnet {
public:
    /// `address/prefix`; the prefix is mandatory, decimal, at most 32 (IPv4) or 128 (IPv6).
    /// Malformed: Errc::bad_value.
    static core::Result<Subnet> parse(std::string_view cidr) noexcept;

    bool contains(const asio::ip::address& address) const noexcept;
    /// Canonical text: `10.0.0.0/8`.
    std::string to_string() const;

private:
    Subnet(const asio::ip::address& network, unsigned prefix) noexcept;

    asio::ip::address network_;  ///< host bits cleared; IPv4 when mapped
    unsigned prefix_ = 0;
};

}  // namespace server
