#pragma once

// libsodium sealed boxes (X25519 + XSalsa20-Poly1305, anonymous sender) and the key files of
// `metrics-keygen`. File format (docs/OPERATIONS.md), one line each, base64 of 32 bytes:
//   private.key: "metrics-x25519-private-key <base64>\n"   (the secret scalar; mode 0600)
//   public.key:  "metrics-x25519-public-key <base64>\n"    (mode 0644)
// The prefix names the kind, so the wrong file given to a binary is refused by name.

#include "core/result.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace codec {

inline constexpr std::size_t key_bytes = 32;   ///< crypto_box_PUBLICKEYBYTES = SECRETKEYBYTES
inline constexpr std::size_t seal_bytes = 48;  ///< crypto_box_SEALBYTES: a box's overhead
inline constexpr std::string_view public_key_prefix = "metrics-x25519-public-key ";
inline constexpr std::string_view private_key_prefix = "metrics-x25519-private-key ";

enum class KeyKind : unsigned char { public_key, private_key };

struct PublicKey {
    std::array<unsigned char, key_bytes> bytes{};
};

/// A key pair whose secret half is zeroed (sodium_memzero) when it is destroyed or moved from.
/// Immutable after construction: safe to share between threads.
class KeyPair {
public:
    /// A fresh random pair.
    static KeyPair generate();
    /// The pair of `secret` (the public half is derived). `secret` is not zeroed.
    static KeyPair from_secret(const unsigned char (&secret)[key_bytes]) noexcept;

    KeyPair(KeyPair&& other) noexcept;
    KeyPair& operator=(KeyPair&&) = delete;
    KeyPair(const KeyPair&) = delete;
    ~KeyPair();

    const PublicKey& public_key() const noexcept { return public_; }
    const unsigned char* secret() const noexcept { return secret_.data(); }

private:
    KeyPair() = default;

    PublicKey public_;
    std::array<unsigned char, key_bytes> secret_{};
};

/// `plain` sealed to `to`: `out` is replaced by the box (plain.size() + seal_bytes bytes).
void seal(const PublicKey& to, std::string_view plain, std::string& out);
/// Opens a box sealed to `keys`: `out` is replaced by its contents. A box that is too short, was
/// sealed to another key or was altered: Errc::bad_encoding (`out` is then unspecified).
core::Result<void> open(const KeyPair& keys, std::string_view box, std::string& out);

/// Key file text (one line with its newline).
std::string public_key_text(const PublicKey& key);
/// The private key file's text; the caller zeroes it (sodium_memzero) once written.
std::string private_key_text(const KeyPair& keys);
/// The key in key file text (trailing whitespace allowed). Anything else: Errc::bad_value.
core::Result<PublicKey> parse_public_key(std::string_view text) noexcept;
core::Result<KeyPair> parse_private_key(std::string_view text) noexcept;
/// Which kind of key file `text` claims to be by its prefix, if either.
std::optional<KeyKind> key_kind(std::string_view text) noexcept;

/// Reads the key file at `path`. Errors come back as one line naming the file: missing,
/// unreadable, not a regular file, larger than a key file can be, malformed, or of the other kind.
std::string load_public_key(const std::string& path, PublicKey& out);
std::string load_private_key(const std::string& path, std::optional<KeyPair>& out);

/// Writes the pair: the private file with mode 0600 and the public one with 0644, whatever the
/// umask. Each file is written to a temporary file in its directory, synced, then linked into
/// place: without `force` an existing file is never replaced (nothing is written if either
/// exists); with `force` it is replaced atomically. Errors: one line naming the file.
std::string write_key_files(const std::string& private_path, const std::string& public_path,
                            const KeyPair& keys, bool force);

}  // namespace codec
