#pragma once

#include <array>
#include <string_view>

namespace codec {

/// Lowercase hex HMAC-SHA256 of `data` keyed by the bytes of `key` (libsodium), the
/// `HashSHA256` header of the Go protocol.
using HexDigest = std::array<char, 64>;
HexDigest hmac_sha256_hex(std::string_view key, std::string_view data) noexcept;
inline std::string_view view(const HexDigest& d) noexcept { return {d.data(), d.size()}; }

/// Whether `hex` (case-insensitive hex, 64 chars) is the HMAC of `data`; constant time in the
/// digest comparison. Wrong length or non-hex: false.
bool hmac_sha256_matches(std::string_view key, std::string_view data, std::string_view hex) noexcept;

}  // namespace codec
