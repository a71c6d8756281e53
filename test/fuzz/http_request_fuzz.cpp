// Fuzz target for http::RequestParser: each input is parsed whole (with pipelining) and in
// random pieces, each piece into a freshly allocated buffer, under default and tiny limits.
// Given whole, a complete head takes the parser's fast path; split, the first piece is one
// byte, so the head always goes line by line.
// Invariants: both ways agree on everything the parser reports; a done request lies inside
// the buffer and within the limits; the parser never needs more than max_message_bytes().
#include "http/parser.hpp"
#include "unit/http/support.hpp"
#include "support/fuzz_check.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using http::RequestParser;
using State = RequestParser::State;

bool inside(std::string_view v, const std::vector<char>& buffer)
{
    const char* begin = buffer.data();
    return v.data() >= begin && v.data() + v.size() <= begin + buffer.size();
}

void check(const RequestParser& parser, State state, const std::vector<char>& buffer,
           const http::Limits& limits)
{
    switch (state) {
    case State::need_more:
        FUZZ_CHECK(buffer.size() <= limits.max_message_bytes());
        return;
    case State::error: {
        const core::Errc e = parser.error();
        FUZZ_CHECK(e == core::Errc::bad_request || e == core::Errc::uri_too_long ||
                   e == core::Errc::header_too_large || e == core::Errc::body_too_large);
        return;
    }
    case State::done:
        break;
    }
    const http::Request& r = parser.request();
    FUZZ_CHECK(parser.headers_complete());
    FUZZ_CHECK(parser.consumed() > 0 && parser.consumed() <= buffer.size());
    FUZZ_CHECK(inside(r.method_text, buffer) && inside(r.target, buffer));
    FUZZ_CHECK(inside(r.path, buffer) && inside(r.query, buffer) && inside(r.body, buffer));
    FUZZ_CHECK(r.target.size() <= limits.max_uri && !r.target.empty() && r.target[0] == '/');
    FUZZ_CHECK(r.target.substr(0, r.path.size()) == r.path);
    FUZZ_CHECK(r.version_minor == 0 || r.version_minor == 1);
    FUZZ_CHECK(r.headers.size() <= limits.max_headers);
    for (const http::Header& h : r.headers)
        FUZZ_CHECK(inside(h.name, buffer) && inside(h.value, buffer) && !h.name.empty());
    // The field index agrees with a scan by name.
    for (std::size_t f = 0; f < http::field_count; ++f) {
        const auto field = static_cast<http::Field>(f);
        FUZZ_CHECK(r.header(field) == r.header(http::field_name(field)));
    }
    FUZZ_CHECK(r.body.size() <= limits.max_body);
    FUZZ_CHECK(r.body.data() + r.body.size() <= buffer.data() + parser.consumed());
}

void run(std::string_view input, const http::Limits& limits)
{
    // Whole, then every pipelined request after it.
    std::vector<char> whole(input.begin(), input.end());
    RequestParser parser{limits};
    State state = parser.parse(whole);
    check(parser, state, whole, limits);
    const test::RequestOutcome first = test::outcome(parser, state);
    std::vector<char> rest = whole;
    for (int i = 0; i < 8 && state == State::done; ++i) {
        rest.erase(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(parser.consumed()));
        parser.reset();
        state = parser.parse(rest);
        check(parser, state, rest, limits);
    }

    // In random pieces, each time into a new allocation (the parser must follow it).
    std::uint64_t rng = 0x9e3779b97f4a7c15ULL ^ input.size();
    for (char c : input.substr(0, 16))
        rng = rng * 31 + static_cast<unsigned char>(c);
    RequestParser split{limits};
    std::vector<char> buffer;
    state = State::need_more;
    std::size_t fed = 0;
    while (fed < input.size() && state == State::need_more) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        const std::size_t piece = fed == 0 ? 1 : 1 + (rng >> 33) % 24;
        const std::size_t n = piece < input.size() - fed ? piece : input.size() - fed;
        std::vector<char> grown(buffer.size() + n);
        std::copy(buffer.begin(), buffer.end(), grown.begin());
        std::copy(input.begin() + static_cast<std::ptrdiff_t>(fed),
                  input.begin() + static_cast<std::ptrdiff_t>(fed + n),
                  grown.begin() + static_cast<std::ptrdiff_t>(buffer.size()));
        buffer.swap(grown);
        fed += n;
        state = split.parse(buffer);
        check(split, state, buffer, limits);
    }
    if (input.empty())
        state = split.parse(buffer);
    const test::RequestOutcome second = test::outcome(split, state);
    FUZZ_CHECK(first.state == second.state);
    FUZZ_CHECK(first.error == second.error);
    FUZZ_CHECK(first == second);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    run(input, http::Limits{});
    http::Limits tiny;
    tiny.max_request_line = 40;
    tiny.max_uri = 24;
    tiny.max_header_bytes = 64;
    tiny.max_headers = 4;
    tiny.max_body = 32;
    run(input, tiny);
    return 0;
}
