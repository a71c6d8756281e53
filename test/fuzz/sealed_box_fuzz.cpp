// The sealed-box path through the server's middleware (signature, OpenSealedBox, gunzip, router):
// the first byte chooses whether the rest is sent as it is (then it cannot open: always 400) or
// sealed to the server's key first (then it opens, and what is inside meets gunzip and the JSON
// parser). No crash, no 5xx, nothing stored from a box that did not open.
#include "codec/hmac.hpp"
#include "codec/sealed_box.hpp"
#include "server/offline.hpp"
#include "server/pipeline.hpp"
#include "storage/memory.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

struct Target {
    Target()
    {
        config.access_log = false;
        config.key = "fuzz";
        security.keys = &keys;
        pipeline = server::make_pipeline(config, store, security);
    }
    codec::KeyPair keys = codec::KeyPair::generate();
    storage::MemoryStorage store;
    server::Config config;
    server::Security security;
    std::unique_ptr<server::Pipeline> pipeline;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static Target t;
    static server::OfflineConnection conn{*t.pipeline};
    if (size == 0)
        return 0;
    const bool seal = (data[0] & 1) != 0;
    const std::string_view rest{reinterpret_cast<const char*>(data) + 1, size - 1};
    std::string body;
    if (seal)
        codec::seal(t.keys.public_key(), rest, body);
    else
        body.assign(rest);
    const auto hash = codec::hmac_sha256_hex("fuzz", body);
    const std::string request = "POST /updates/ HTTP/1.1\r\nHost: f\r\nContent-Type: application/json\r\n"
                                "Content-Encoding: gzip\r\nX-Encrypted: sealed-box\r\nHashSHA256: " +
                                std::string{codec::view(hash)} + "\r\nContent-Length: " + std::to_string(body.size()) +
                                "\r\n\r\n" + body;
    const auto answer = conn.handle(request);
    if (answer.status >= 500 || (!seal && answer.status != 400))
        std::abort();
    return 0;
}
