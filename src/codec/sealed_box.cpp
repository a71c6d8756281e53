#include "codec/sealed_box.hpp"

#include <sodium.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace codec {
namespace {

/// sodium_init once, before the first use of anything random (generate, seal).
void ensure_sodium()
{
    static const bool ready = sodium_init() >= 0;
    if (!ready)
        throw std::runtime_error("libsodium failed to initialise");
}

constexpr std::size_t base64_chars = 44;  // 32 bytes with padding

/// The base64 of 32 bytes after `prefix`, trailing whitespace ignored, into `out`.
bool decode_key(std::string_view text, std::string_view prefix, unsigned char (&out)[key_bytes]) noexcept
{
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
        text.remove_suffix(1);
    if (!text.starts_with(prefix))
        return false;
    text.remove_prefix(prefix.size());
    if (text.size() != base64_chars)
        return false;
    std::size_t decoded = 0;
    const char* end = nullptr;
    if (sodium_base642bin(out, key_bytes, text.data(), text.size(), nullptr, &decoded, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return false;
    return decoded == key_bytes && end == text.data() + text.size();
}

std::string encode_key(std::string_view prefix, const unsigned char* key)
{
    std::array<char, 64> b64{};
    static_assert(sodium_base64_ENCODED_LEN(key_bytes, sodium_base64_VARIANT_ORIGINAL) <= 64);
    sodium_bin2base64(b64.data(), b64.size(), key, key_bytes, sodium_base64_VARIANT_ORIGINAL);
    std::string text;
    text.reserve(prefix.size() + base64_chars + 1);
    text.append(prefix).append(b64.data()).push_back('\n');
    sodium_memzero(b64.data(), b64.size());
    return text;
}

std::string errno_line(const std::string& path, std::string_view doing, int err)
{
    return std::string{doing} + " " + path + ": " + std::strerror(err);
}

class Fd {
public:
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    int get() const noexcept { return fd_; }

private:
    int fd_;
};

/// The whole of a small regular file into `text`, or an error line naming it.
std::string read_key_file(const std::string& path, std::string& text)
{
    constexpr std::size_t max_key_file = 4096;
    Fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY)};
    if (fd.get() < 0)
        return errno_line(path, "cannot open key file", errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return errno_line(path, "cannot stat key file", errno);
    if (!S_ISREG(st.st_mode))
        return "key file " + path + " is not a regular file";
    if (static_cast<std::size_t>(st.st_size) > max_key_file)
        return "key file " + path + " is too large to be a key file";
    text.resize(max_key_file + 1);
    std::size_t got = 0;
    for (;;) {
        const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno_line(path, "cannot read key file", errno);
        if (n == 0)
            break;
        got += static_cast<std::size_t>(n);
        if (got == text.size())
            return "key file " + path + " is too large to be a key file";
    }
    text.resize(got);
    return {};
}

/// Why `text` is not a key of kind `wanted`, as one line naming `path`.
std::string refusal(const std::string& path, std::string_view text, KeyKind wanted)
{
    const auto kind = key_kind(text);
    if (kind && *kind != wanted)
        return wanted == KeyKind::private_key
                   ? "key file " + path + " holds a public key; a private key is needed here (metrics-keygen's private.key)"
                   : "key file " + path + " holds a private key; the public key is needed here (metrics-keygen's public.key)";
    const std::string_view prefix = wanted == KeyKind::private_key ? private_key_prefix : public_key_prefix;
    return "key file " + path + " is malformed: expected one line \"" + std::string{prefix} + "<base64 of 32 bytes>\"";
}

/// `text` into a fresh temporary file beside `path` with `mode`, synced: its name, or an error.
std::string write_temporary(const std::string& path, std::string_view text, mode_t mode, std::string& temporary)
{
    std::string name = path + ".tmp.XXXXXX";
    const int raw = ::mkostemp(name.data(), O_CLOEXEC);
    if (raw < 0)
        return errno_line(path, "cannot create a temporary file beside", errno);
    Fd fd{raw};
    temporary = name;
    // fchmod: the umask cannot narrow or widen what the key file needs.
    if (::fchmod(fd.get(), mode) != 0)
        return errno_line(name, "cannot set the mode of", errno);
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno_line(name, "cannot write", errno);
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0)
        return errno_line(name, "cannot sync", errno);
    return {};
}

/// Moves the temporary file into place: link() refuses an existing file, rename() replaces it.
std::string install(const std::string& temporary, const std::string& path, bool force)
{
    std::string error;
    if (force) {
        if (::rename(temporary.c_str(), path.c_str()) != 0)
            error = errno_line(path, "cannot write", errno);
    } else if (::link(temporary.c_str(), path.c_str()) != 0) {
        error = errno == EEXIST ? path + " exists; use --force to replace it" : errno_line(path, "cannot write", errno);
    }
    ::unlink(temporary.c_str());
    return error;
}

std::string write_key_file(const std::string& path, std::string_view text, mode_t mode, bool force)
{
    std::string temporary;
    std::string error = write_temporary(path, text, mode, temporary);
    if (!error.empty()) {
        if (!temporary.empty())
            ::unlink(temporary.c_str());
        return error;
    }
    return install(temporary, path, force);
}

}  // namespace

KeyPair KeyPair::generate()
{
    ensure_sodium();
    KeyPair k;
    crypto_box_keypair(k.public_.bytes.data(), k.secret_.data());
    return k;
}

KeyPair KeyPair::from_secret(const unsigned char (&secret)[key_bytes]) noexcept
{
    // Picks the fastest implementations; thread-safe and idempotent (as in hmac.cpp).
    [[maybe_unused]] static const int initialised = sodium_init();
    KeyPair k;
    std::memcpy(k.secret_.data(), secret, key_bytes);
    crypto_scalarmult_base(k.public_.bytes.data(), k.secret_.data());
    return k;
}

KeyPair::KeyPair(KeyPair&& other) noexcept : public_(other.public_), secret_(other.secret_)
{
    sodium_memzero(other.secret_.data(), other.secret_.size());
}

KeyPair::~KeyPair() { sodium_memzero(secret_.data(), secret_.size()); }

void seal(const PublicKey& to, std::string_view plain, std::string& out)
{
    ensure_sodium();
    out.resize(plain.size() + seal_bytes);
    crypto_box_seal(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(plain.data()),
                    plain.size(), to.bytes.data());
}

core::Result<void> open(const KeyPair& keys, std::string_view box, std::string& out)
{
    if (box.size() < seal_bytes)
        return core::Errc::bad_encoding;
    out.resize(box.size() - seal_bytes);
    if (crypto_box_seal_open(reinterpret_cast<unsigned char*>(out.data()),
                             reinterpret_cast<const unsigned char*>(box.data()), box.size(),
                             keys.public_key().bytes.data(), keys.secret()) != 0)
        return core::Errc::bad_encoding;
    return {};
}

std::string public_key_text(const PublicKey& key) { return encode_key(public_key_prefix, key.bytes.data()); }

std::string private_key_text(const KeyPair& keys) { return encode_key(private_key_prefix, keys.secret()); }

core::Result<PublicKey> parse_public_key(std::string_view text) noexcept
{
    unsigned char bytes[key_bytes];
    if (!decode_key(text, public_key_prefix, bytes))
        return core::Errc::bad_value;
    PublicKey key;
    std::memcpy(key.bytes.data(), bytes, key_bytes);
    return key;
}

core::Result<KeyPair> parse_private_key(std::string_view text) noexcept
{
    unsigned char secret[key_bytes];
    const bool ok = decode_key(text, private_key_prefix, secret);
    core::Result<KeyPair> result = ok ? core::Result<KeyPair>{KeyPair::from_secret(secret)}
                                      : core::Result<KeyPair>{core::Errc::bad_value};
    sodium_memzero(secret, sizeof secret);
    return result;
}

std::optional<KeyKind> key_kind(std::string_view text) noexcept
{
    if (text.starts_with(public_key_prefix))
        return KeyKind::public_key;
    if (text.starts_with(private_key_prefix))
        return KeyKind::private_key;
    return std::nullopt;
}

std::string load_public_key(const std::string& path, PublicKey& out)
{
    std::string text;
    if (auto error = read_key_file(path, text); !error.empty())
        return error;
    auto key = parse_public_key(text);
    if (!key)
        return refusal(path, text, KeyKind::public_key);
    out = *key;
    return {};
}

std::string load_private_key(const std::string& path, std::optional<KeyPair>& out)
{
    std::string text;
    std::string error = read_key_file(path, text);
    if (error.empty()) {
        if (auto keys = parse_private_key(text))
            out.emplace(std::move(*keys));
        else
            error = refusal(path, text, KeyKind::private_key);
    }
    sodium_memzero(text.data(), text.size());
    return error;
}

std::string write_key_files(const std::string& private_path, const std::string& public_path, const KeyPair& keys,
                            bool force)
{
    if (!force) {
        for (const std::string* path : {&private_path, &public_path}) {
            struct stat st {};
            if (::lstat(path->c_str(), &st) == 0)
                return *path + " exists; use --force to replace it";
        }
    }
    std::string secret = private_key_text(keys);
    std::string error = write_key_file(private_path, secret, 0600, force);
    sodium_memzero(secret.data(), secret.size());
    if (error.empty())
        error = write_key_file(public_path, public_key_text(keys.public_key()), 0644, force);
    return error;
}

}  // namespace codec
