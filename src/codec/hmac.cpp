#include "codec/hmac.hpp"

#include <sodium.h>

namespace codec {

namespace {

using Digest = std::array<unsigned char, crypto_auth_hmacsha256_BYTES>;

Digest hmac(std::string_view key, std::string_view data) noexcept
{
    // sodium_init picks the fastest SHA-256 implementation; it is thread-safe and idempotent,
    // the static only saves the repeated call.
    [[maybe_unused]] static const int initialised = sodium_init();
    // The _init/_update/_final API takes keys of any length (hashing long ones per RFC 2104),
    // unlike crypto_auth_hmacsha256 which requires exactly 32 bytes.
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
    crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(data.data()), data.size());
    Digest d;
    crypto_auth_hmacsha256_final(&state, d.data());
    sodium_memzero(&state, sizeof state);
    return d;
}

int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

}  // namespace

HexDigest hmac_sha256_hex(std::string_view key, std::string_view data) noexcept
{
    static constexpr char digits[] = "0123456789abcdef";
    const Digest d = hmac(key, data);
    HexDigest hex;
    for (std::size_t i = 0; i < d.size(); ++i) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 0xf];
    }
    return hex;
}

bool hmac_sha256_matches(std::string_view key, std::string_view data, std::string_view hex) noexcept
{
    if (hex.size() != 2 * crypto_auth_hmacsha256_BYTES)
        return false;
    Digest sent;
    for (std::size_t i = 0; i < sent.size(); ++i) {
        const int hi = hex_value(hex[2 * i]);
        const int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        sent[i] = static_cast<unsigned char>(hi << 4 | lo);
    }
    const Digest expected = hmac(key, data);
    return sodium_memcmp(sent.data(), expected.data(), sent.size()) == 0;
}

}  // namespace codec
