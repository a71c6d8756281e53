#pragma once

// Helpers for the HTTP parser tests: feeding bytes the way a connection does.

#include "http/parser.hpp"

#include <algorithm>
#include <string_view>
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

}  // namespace test
