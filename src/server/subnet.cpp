#include "server/subnet.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstring>

namespace server {
namespace {

/// The IPv4 address an IPv4-mapped IPv6 address stands for; anything else unchanged.
asio::ip::address unmapped(const asio::ip::address& a) noexcept
{
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return a;
}

/// Whether the first `prefix` bits of `a` and `b` agree.
template <std::size_t N>
bool same_prefix(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b,
                 unsigned prefix) noexcept
{
    const unsigned whole = prefix / 8;
    if (std::memcmp(a.data(), b.data(), whole) != 0)
        return false;
    const unsigned rest = prefix % 8;
    if (rest == 0)
        return true;
    const auto mask = static_cast<unsigned char>(0xFFu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/// `bytes` with every bit after the first `prefix` cleared.
template <std::size_t N>
std::array<unsigned char, N> masked(std::array<unsigned char, N> bytes, unsigned prefix) noexcept
{
    for (std::size_t i = 0; i < N; ++i) {
        const unsigned first_bit = static_cast<unsigned>(i) * 8;
        if (first_bit >= prefix)
            bytes[i] = 0;
        else if (prefix - first_bit < 8)
            bytes[i] = static_cast<unsigned char>(bytes[i] & (0xFFu << (8 - (prefix - first_bit))));
    }
    return bytes;
}

}  // namespace

core::Result<asio::ip::address> parse_ip(std::string_view text) noexcept
{
    // INET6_ADDRSTRLEN (46) includes the terminator: the longest text is 45 characters.
    std::array<char, 46> z{};
    if (text.empty() || text.size() >= z.size())
        return core::Errc::bad_value;
    std::memcpy(z.data(), text.data(), text.size());
    // inet_pton stops at an embedded NUL: such text must not pass as its prefix.
    if (std::memchr(text.data(), '\0', text.size()) != nullptr)
        return core::Errc::bad_value;
    if (text.find(':') == std::string_view::npos) {
        std::array<unsigned char, 4> v4{};
        if (inet_pton(AF_INET, z.data(), v4.data()) != 1)
            return core::Errc::bad_value;
        return asio::ip::address{asio::ip::address_v4{v4}};
    }
    std::array<unsigned char, 16> v6{};
    if (inet_pton(AF_INET6, z.data(), v6.data()) != 1)
        return core::Errc::bad_value;
    return asio::ip::address{asio::ip::address_v6{v6}};
}

Subnet::Subnet(const asio::ip::address& network, unsigned prefix) noexcept : network_(network), prefix_(prefix) {}

core::Result<Subnet> Subnet::parse(std::string_view cidr) noexcept
{
    const auto slash = cidr.find('/');
    if (slash == std::string_view::npos)
        return core::Errc::bad_value;
    auto address = parse_ip(cidr.substr(0, slash));
    const std::string_view digits = cidr.substr(slash + 1);
    if (!address || digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits.front() == '0'))
        return core::Errc::bad_value;
    unsigned prefix = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc{} || end != digits.data() + digits.size())
        return core::Errc::bad_value;
    asio::ip::address a = *address;
    // A mapped network such as ::ffff:10.0.0.0/104 is the IPv4 network 10.0.0.0/8.
    if (a.is_v6() && a.to_v6().is_v4_mapped()) {
        if (prefix < 96 || prefix > 128)
            return core::Errc::bad_value;
        a = unmapped(a);
        prefix -= 96;
    }
    if (a.is_v4()) {
        if (prefix > 32)
            return core::Errc::bad_value;
        return Subnet{asio::ip::address_v4{masked(a.to_v4().to_bytes(), prefix)}, prefix};
    }
    if (prefix > 128)
        return core::Errc::bad_value;
    return Subnet{asio::ip::address_v6{masked(a.to_v6().to_bytes(), prefix)}, prefix};
}

bool Subnet::contains(const asio::ip::address& address) const noexcept
{
    const asio::ip::address a = unmapped(address);
    if (a.is_v4() != network_.is_v4())
        return false;
    if (a.is_v4())
        return same_prefix(a.to_v4().to_bytes(), network_.to_v4().to_bytes(), prefix_);
    return same_prefix(a.to_v6().to_bytes(), network_.to_v6().to_bytes(), prefix_);
}

std::string Subnet::to_string() const
{
    return network_.to_string() + "/" + std::to_string(prefix_);
}

}  // namespace server
