#include "codec/hmac.hpp"

#include <doctest/doctest.h>

#include <string>

using codec::hmac_sha256_hex;
using codec::hmac_sha256_matches;

namespace {

std::string hex_of(std::string_view key, std::string_view data) { return std::string{codec::view(hmac_sha256_hex(key, data))}; }

}  // namespace

TEST_CASE("HMAC-SHA256 matches the RFC 4231 vectors")
{
    CHECK(hex_of(std::string(20, '\x0b'), "Hi There") ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    CHECK(hex_of("Jefe", "what do ya want for nothing?") ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(hex_of(std::string(20, '\xaa'), std::string(50, '\xdd')) ==
          "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    SUBCASE("a key longer than the block size is hashed first")
    {
        CHECK(hex_of(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First") ==
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }
    SUBCASE("an empty key and empty data are allowed")
    {
        CHECK(hex_of("", "") == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    }
}

TEST_CASE("a digest matches in either case and nothing else does")
{
    const std::string good = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    const std::string data = "what do ya want for nothing?";
    CHECK(hmac_sha256_matches("Jefe", data, good));
    CHECK(hmac_sha256_matches("Jefe", data, "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843"));
    CHECK_FALSE(hmac_sha256_matches("Jeff", data, good));
    CHECK_FALSE(hmac_sha256_matches("Jefe", data + " ", good));
    CHECK_FALSE(hmac_sha256_matches("Jefe", data, good.substr(0, 63)));
    CHECK_FALSE(hmac_sha256_matches("Jefe", data, good + "0"));
    CHECK_FALSE(hmac_sha256_matches("Jefe", data, ""));
    std::string not_hex = good;
    not_hex[10] = 'g';
    CHECK_FALSE(hmac_sha256_matches("Jefe", data, not_hex));
    std::string last_bit = good;
    last_bit.back() = '2';
    CHECK_FALSE(hmac_sha256_matches("Jefe", data, last_bit));
}
