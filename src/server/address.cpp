#include "server/address.hpp"

#include "core/address.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <string>

namespace server {

core::Result<asio::ip::tcp::endpoint> resolve_listen_address(std::string_view address)
{
    auto parts = core::split_host_port(address);
    if (!parts)
        return parts.error();
    const std::string_view host = parts->host;
    const std::string_view port_text = parts->port;
    const unsigned short port16 = parts->number;
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
