#include "server/offline.hpp"

#include <stdexcept>

namespace server {

OfflineConnection::OfflineConnection(const Pipeline& pipeline, http::Limits limits)
    : pipeline_(pipeline), parser_(limits)
{
}

OfflineConnection::Answer OfflineConnection::handle(std::string_view raw)
{
    // The previous answer's views are dead now: give back what it grew, as a connection does.
    response_.trim(retained_bytes);
    scratch_.trim();
    buffer_.assign(raw);
    parser_.reset();
    const auto state = parser_.parse({buffer_.data(), buffer_.size()});
    if (state == http::RequestParser::State::error)
        return {status_for(parser_.error()), {}, {}};
    if (state != http::RequestParser::State::done)
        throw std::invalid_argument("incomplete request");
    const http::Request& request = parser_.request();
    response_.clear();
    Exchange ex{request, request.body, response_, scratch_, "offline", request.method == http::Method::head};
    if (!pipeline_.run_now(ex)) {  // as Listener::serve does
        asio::co_spawn(ioc_, pipeline_(ex), [](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e);
        });
        ioc_.restart();
        ioc_.run();
    }
    head_.clear();
    response_.write_head(head_, request.version_minor, request.keep_alive);
    return {response_.status, {head_.data(), head_.size()}, ex.head_only ? std::string_view{} : response_.payload()};
}

}  // namespace server
