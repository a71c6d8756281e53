#pragma once

// Helpers for the HTTP parser tests: feeding bytes the way a connection does.

#include "http/parser.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace test {

/// Appends `wire` to `buffer` one byte at a time, each time into a freshly allocated copy (as a
/// connection that grows its buffer would), calling parse() after every byte and stopping at
/// done or error. `buffer` ends as the parser's last view of the bytes.
template <class Parser>
typename Parser::State feed_bytewise(Parser& parser, std::string_view wire, std::vector<char>& buffer)
{
    auto state = Parser::State::need_more;
    for (char c : wire) {
        std::vector<char> grown(buffer.size() + 1);
        std::copy(buffer.begin(), buffer.end(), grown.begin());
        grown.back() = c;
        buffer.swap(grown);
        state = parser.parse(buffer);
        if (state != Parser::State::need_more)
            break;
    }
    return state;
}

inline std::vector<char> bytes(std::string_view s) { return {s.begin(), s.end()}; }

/// Everything a request parse reports, copied out of its buffer, so that parses of the same
/// bytes in different buffers (whole, split, byte by byte) compare equal exactly when the parser
/// reported the same. Head fields once the head is complete, consumed bytes and body once done.
struct RequestOutcome {
    http::RequestParser::State state = http::RequestParser::State::need_more;
    core::Errc error = core::Errc::ok;
    bool headers_complete = false;
    std::size_t body_bytes_expected = 0;
    std::size_t consumed = 0;
    http::Method method = http::Method::other;
    std::string method_text, target, path, query, body;
    int version_minor = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::array<std::uint8_t, http::field_count> fields{};
    bool keep_alive = false;
    bool expect_continue = false;

    bool operator==(const RequestOutcome&) const = default;
};

inline RequestOutcome outcome(const http::RequestParser& p, http::RequestParser::State s)
{
    using State = http::RequestParser::State;
    RequestOutcome o;
    o.state = s;
    o.error = p.error();
    o.headers_complete = p.headers_complete();
    if (s == State::error || !o.headers_complete)
        return o;
    const http::Request& r = p.request();
    o.body_bytes_expected = p.body_bytes_expected();
    o.method = r.method;
    o.method_text = r.method_text;
    o.target = r.target;
    o.path = r.path;
    o.query = r.query;
    o.version_minor = r.version_minor;
    for (const http::Header& h : r.headers)
        o.headers.emplace_back(h.name, h.value);
    o.fields = r.fields.slot;
    o.keep_alive = r.keep_alive;
    o.expect_continue = r.expect_continue;
    if (s == State::done) {
        o.consumed = p.consumed();
        o.body = r.body;
    }
    return o;
}

}  // namespace test
