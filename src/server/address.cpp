#include "server/address.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <charconv>
#include <string>

namespace server {

core::Result<asio::ip::tcp::endpoint> resolve_listen_address(std::string_view address)
{
    if (address.starts_with("http://"))
        address.remove_prefix(7);
    while (!address.empty() && address.back() == '/')
        address.remove_suffix(1);
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos)
        return core::Errc::bad_value;
    std::string_view host = address.substr(0, colon);
    const std::string_view port_text = address.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535 || port_text.empty())
        return core::Errc::bad_value;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    const auto port16 = static_cast<unsigned short>(port);
    if (host.empty())
        return asio::ip::tcp::endpoint{asio::ip::tcp::v4(), port16};
    std::error_code error;
    auto ip = asio::ip::make_address(std::string{host}, error);
    if (!error)
        return asio::ip::tcp::endpoint{ip, port16};
    asio::io_context ioc;
    asio::ip::tcp::resolver resolver{ioc};
    auto results = resolver.resolve(std::string{host}, std::string{port_text}, error);
    if (error || results.empty())
        return core::Errc::bad_value;
    for (const auto& r : results)
        if (r.endpoint().address().is_v4())
            return r.endpoint();
    return results.begin()->endpoint();
}

}  // namespace server
