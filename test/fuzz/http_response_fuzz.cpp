// Fuzz target for http::ResponseParser: each input is parsed whole and in random pieces (each
// piece into a freshly allocated buffer), then closed with finish_eof(), under default and tiny
// limits. Invariants: both ways agree; a done response lies inside the buffer and within the
// limits; the parser never needs more than Limits::max_message_bytes().
#include "http/parser.hpp"
#include "support/fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace {

using http::ResponseParser;
using State = ResponseParser::State;

bool inside(std::string_view v, const std::vector<char>& buffer)
{
    const char* begin = buffer.data();
    return v.data() >= begin && v.data() + v.size() <= begin + buffer.size();
}

void check(const ResponseParser& parser, State state, const std::vector<char>& buffer,
           const http::Limits& limits)
{
    switch (state) {
    case State::need_more:
        FUZZ_CHECK(buffer.size() <= limits.max_message_bytes());
        return;
    case State::error: {
        const core::Errc e = parser.error();
        FUZZ_CHECK(e == core::Errc::bad_request || e == core::Errc::header_too_large ||
                   e == core::Errc::body_too_large);
        return;
    }
    case State::done:
        break;
    }
    const http::Response& r = parser.response();
    FUZZ_CHECK(parser.consumed() > 0 && parser.consumed() <= buffer.size());
    FUZZ_CHECK(r.status >= 200 && r.status <= 599);
    FUZZ_CHECK(inside(r.reason, buffer) && inside(r.body, buffer));
    FUZZ_CHECK(r.headers.size() <= limits.max_headers);
    for (const http::Header& h : r.headers)
        FUZZ_CHECK(inside(h.name, buffer) && inside(h.value, buffer) && !h.name.empty());
    // The field index agrees with a scan by name.
    for (std::size_t f = 0; f < http::field_count; ++f) {
        const auto field = static_cast<http::Field>(f);
        FUZZ_CHECK(r.header(field) == r.header(http::field_name(field)));
    }
    FUZZ_CHECK(r.body.size() <= limits.max_body);
}

struct Outcome {
    State state;
    core::Errc error;
    std::size_t consumed;
    int status;
    std::string_view body;
};

Outcome outcome(const ResponseParser& p, State s)
{
    if (s != State::done)
        return {s, p.error(), 0, 0, {}};
    return {s, p.error(), p.consumed(), p.response().status, p.response().body};
}

void run(std::string_view input, const http::Limits& limits, bool head)
{
    std::vector<char> whole(input.begin(), input.end());
    ResponseParser parser{limits};
    parser.set_head_request(head);
    State state = parser.parse(whole);
    check(parser, state, whole, limits);
    if (state == State::need_more) {
        state = parser.finish_eof();
        FUZZ_CHECK(state != State::need_more);
        check(parser, state, whole, limits);
    }
    const Outcome first = outcome(parser, state);

    std::uint64_t rng = 0x2545f4914f6cdd1dULL ^ input.size();
    for (char c : input.substr(0, 16))
        rng = rng * 31 + static_cast<unsigned char>(c);
    ResponseParser split{limits};
    split.set_head_request(head);
    std::vector<char> buffer;
    state = split.parse(buffer);
    std::size_t fed = 0;
    while (fed < input.size() && state == State::need_more) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        // One byte first: the head goes line by line, not by the fast path of a whole one.
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
    if (state == State::need_more)
        state = split.finish_eof();
    const Outcome second = outcome(split, state);
    FUZZ_CHECK(first.state == second.state);
    FUZZ_CHECK(first.error == second.error);
    FUZZ_CHECK(first.consumed == second.consumed);
    FUZZ_CHECK(first.status == second.status);
    FUZZ_CHECK(first.body == second.body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const bool head = size % 5 == 0;  // now and then, as if answering HEAD
    run(input, http::Limits{}, head);
    http::Limits tiny;
    tiny.max_request_line = 40;
    tiny.max_header_bytes = 64;
    tiny.max_headers = 4;
    tiny.max_body = 32;
    run(input, tiny, head);
    return 0;
}
