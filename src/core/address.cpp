#include "core/address.hpp"

#include <charconv>

namespace core {

Result<HostPort> split_host_port(std::string_view address) noexcept
{
    if (address.starts_with("http://"))
        address.remove_prefix(7);
    while (!address.empty() && address.back() == '/')
        address.remove_suffix(1);
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos)
        return Errc::bad_value;
    std::string_view host = address.substr(0, colon);
    const std::string_view port = address.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535)
        return Errc::bad_value;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return HostPort{host, port, static_cast<unsigned short>(value)};
}

}  // namespace core
