// Fuzz target for the router's path splitting and percent-decoding and the middleware chain,
// through the whole pipeline (OfflineConnection: parser, middleware, router, response writer).
// An input is `segment \n body`; a first byte's low bits choose the body's headers.
// Invariants:
//  - `POST /update/gauge/{segment}/1.5`: when the parser takes the target, the answer is what a
//    reference percent-decoder says: 404 for an empty segment or one with a raw '/' (a part
//    missing or over), 400 for a malformed escape or an invalid decoded name, else 200;
//    then `GET /value/gauge/{segment}` answers "1.5" and `POST /value/` finds the decoded name.
//  - `POST /updates/` with the body (gzip'd, signed or not, asking for gzip or not): a status
//    of API.md, a Content-Length that matches the payload, and a HashSHA256 over the payload.
#include "codec/gzip.hpp"
#include "codec/hmac.hpp"
#include "core/metric.hpp"
#include "server/config.hpp"
#include "server/offline.hpp"
#include "server/pipeline.hpp"
#include "storage/memory.hpp"
#include "support/fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view key = "fuzz-key";

struct World {
    storage::MemoryStorage store;
    server::Config config = [] {
        server::Config c;
        c.access_log = false;
        c.key = std::string{key};
        return c;
    }();
    std::unique_ptr<server::Pipeline> pipeline = server::make_pipeline(config, store);
    server::OfflineConnection conn{*pipeline};
    codec::Gzip gzip;
};

World& world()
{
    static World w;  // one pipeline for every input, as a long-lived connection has
    return w;
}

int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/// RFC 3986 percent-decoding written independently of the router's: nullopt when malformed.
std::optional<std::string> reference_decode(std::string_view s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (s.size() - i < 3 || hex_digit(s[i + 1]) < 0 || hex_digit(s[i + 2]) < 0)
            return std::nullopt;
        out.push_back(static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2])));
        i += 2;
    }
    return out;
}

std::string_view header(std::string_view head, std::string_view name)
{
    const std::string needle = "\r\n" + std::string{name} + ": ";
    const auto at = head.find(needle);
    if (at == std::string_view::npos)
        return {};
    const auto start = at + needle.size();
    return head.substr(start, head.find("\r\n", start) - start);
}

void check_signed(const server::OfflineConnection::Answer& a)
{
    FUZZ_CHECK(header(a.head, "Content-Length") == std::to_string(a.body.size()));
    FUZZ_CHECK(codec::hmac_sha256_matches(key, a.body, header(a.head, "HashSHA256")));
}

/// Printable ASCII that needs no JSON escaping: the names the JSON cross-check can spell.
bool plain_json(std::string_view s)
{
    for (char c : s)
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            return false;
    return true;
}

void check_url_routes(std::string_view segment)
{
    World& w = world();
    const std::string target = "/update/gauge/" + std::string{segment} + "/1.5";
    const auto update = w.conn.handle("POST " + target + " HTTP/1.1\r\nHost: f\r\n\r\n");
    if (update.head.empty()) {  // the parser refused the request line
        FUZZ_CHECK(update.status == 400 || update.status == 414);
        return;
    }
    check_signed(update);
    if (segment.find_first_of("?#") != std::string_view::npos) {  // the target's path ends early
        FUZZ_CHECK(update.status == 200 || update.status == 400 || update.status == 404);
        return;
    }
    // An empty segment leaves the name out; a '/' in it shifts the value into a name's place
    // and leaves a part over: both are unknown routes.
    const auto decoded = reference_decode(segment);
    int expected = 200;
    if (segment.empty() || segment.find('/') != std::string_view::npos)
        expected = 404;
    else if (!decoded || !core::valid_name(*decoded))
        expected = 400;
    FUZZ_CHECK(update.status == expected);
    if (update.status != 200)
        return;
    const auto value = w.conn.handle("GET /value/gauge/" + std::string{segment} + " HTTP/1.1\r\nHost: f\r\n\r\n");
    FUZZ_CHECK(value.status == 200 && value.body == "1.5");
    if (plain_json(*decoded)) {
        const std::string body = R"({"id":")" + *decoded + R"(","type":"gauge"})";
        const auto json = w.conn.handle("POST /value/ HTTP/1.1\r\nHost: f\r\nContent-Type: application/json\r\n"
                                        "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
        FUZZ_CHECK(json.status == 200);
    }
}

void check_batch(std::uint8_t flags, std::string_view body)
{
    World& w = world();
    std::string sent{body};
    std::string headers = "Content-Type: application/json\r\n";
    if (flags & 1) {
        std::string packed;
        w.gzip.compress(sent, packed);
        sent.swap(packed);
        headers += "Content-Encoding: gzip\r\n";
    }
    if (flags & 2)
        headers += "Accept-Encoding: gzip\r\n";
    if (flags & 4)
        headers += "HashSHA256: " + std::string{codec::view(codec::hmac_sha256_hex(key, sent))} + "\r\n";
    else if (flags & 8)
        headers += "HashSHA256: " + std::string(64, '0') + "\r\n";
    const auto a = w.conn.handle("POST /updates/ HTTP/1.1\r\nHost: f\r\n" + headers + "Content-Length: " +
                                 std::to_string(sent.size()) + "\r\n\r\n" + sent);
    if (a.head.empty())
        return;
    FUZZ_CHECK(a.status == 200 || a.status == 400 || a.status == 413);
    if (flags & 8 && !(flags & 4))
        FUZZ_CHECK(a.status == 400);
    check_signed(a);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto newline = input.find('\n');
    check_url_routes(input.substr(0, newline));
    if (newline != std::string_view::npos && newline + 1 < input.size()) {
        const std::string_view rest = input.substr(newline + 1);
        check_batch(static_cast<std::uint8_t>(rest[0]), rest.substr(1));
    }
    return 0;
}
