#include "codec/sealed_box.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

/// A fresh directory under the system's temporary one, removed at the end.
struct TempDir {
    TempDir()
    {
        std::string pattern = (fs::temp_directory_path() / "metrics-keys-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~TempDir() { fs::remove_all(path); }
    std::string file(const char* name) const { return (path / name).string(); }
    fs::path path;
};

std::string slurp(const std::string& path)
{
    std::ifstream in{path, std::ios::binary};
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void spit(const std::string& path, const std::string& text) { std::ofstream{path, std::ios::binary} << text; }

unsigned mode_of(const std::string& path)
{
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

/// Sets the umask for one scope.
struct Umask {
    explicit Umask(mode_t m) : old(::umask(m)) {}
    ~Umask() { ::umask(old); }
    mode_t old;
};

}  // namespace

TEST_CASE("a sealed box opens with the recipient's pair into the original bytes")
{
    const auto keys = codec::KeyPair::generate();
    std::string box;
    std::string out;
    for (const std::string& plain : {std::string{}, std::string{"x"}, std::string(100000, 'z')}) {
        codec::seal(keys.public_key(), plain, box);
        CHECK(box.size() == plain.size() + codec::seal_bytes);
        REQUIRE(codec::open(keys, box, out));
        CHECK(out == plain);
    }

    SUBCASE("any flipped bit, a truncation or another recipient is refused") {
        codec::seal(keys.public_key(), "secret metrics", box);
        for (std::size_t i = 0; i < box.size(); i += 7) {
            std::string bad = box;
            bad[i] = static_cast<char>(bad[i] ^ 0x10);
            CHECK(codec::open(keys, bad, out).error() == core::Errc::bad_encoding);
        }
        CHECK(codec::open(keys, std::string_view{box}.substr(0, box.size() - 1), out).error() ==
              core::Errc::bad_encoding);
        CHECK(codec::open(keys, std::string_view{box}.substr(0, 10), out).error() == core::Errc::bad_encoding);
        CHECK(codec::open(keys, "", out).error() == core::Errc::bad_encoding);
        const auto other = codec::KeyPair::generate();
        CHECK(codec::open(other, box, out).error() == core::Errc::bad_encoding);
    }
}

TEST_CASE("key file text names its kind and round-trips")
{
    const auto keys = codec::KeyPair::generate();
    const std::string pub = codec::public_key_text(keys.public_key());
    const std::string priv = codec::private_key_text(keys);
    CHECK(pub.starts_with("metrics-x25519-public-key "));
    CHECK(priv.starts_with("metrics-x25519-private-key "));
    CHECK(pub.size() == codec::public_key_prefix.size() + 44 + 1);
    CHECK(pub.back() == '\n');

    auto parsed_pub = codec::parse_public_key(pub);
    REQUIRE(parsed_pub);
    CHECK(parsed_pub->bytes == keys.public_key().bytes);
    auto parsed_priv = codec::parse_private_key(priv);
    REQUIRE(parsed_priv);
    CHECK(parsed_priv->public_key().bytes == keys.public_key().bytes);  // derived from the secret

    CHECK(codec::key_kind(pub) == codec::KeyKind::public_key);
    CHECK(codec::key_kind(priv) == codec::KeyKind::private_key);
    CHECK(!codec::key_kind("ssh-ed25519 AAAA"));

    SUBCASE("the wrong kind or damaged text is refused") {
        CHECK(!codec::parse_public_key(priv));
        CHECK(!codec::parse_private_key(pub));
        CHECK(!codec::parse_public_key(pub.substr(0, pub.size() - 2)));        // one base64 char short
        CHECK(!codec::parse_public_key(pub.substr(0, pub.size() - 1) + "AAAA\n"));  // longer
        CHECK(!codec::parse_public_key(" " + pub));
        CHECK(!codec::parse_public_key(""));
        std::string bad = pub;
        bad[codec::public_key_prefix.size()] = '*';
        CHECK(!codec::parse_public_key(bad));
        CHECK(codec::parse_public_key(pub.substr(0, pub.size() - 1) + "\r\n  \n"));  // trailing space is fine
    }
}

TEST_CASE("keys written to files load back; modes are 0600 and 0644 whatever the umask")
{
    TempDir dir;
    const auto keys = codec::KeyPair::generate();
    const std::string priv = dir.file("private.key");
    const std::string pub = dir.file("public.key");
    {
        Umask wide{0};
        REQUIRE(codec::write_key_files(priv, pub, keys, false).empty());
    }
    CHECK(mode_of(priv) == 0600);
    CHECK(mode_of(pub) == 0644);

    std::optional<codec::KeyPair> loaded;
    REQUIRE(codec::load_private_key(priv, loaded).empty());
    CHECK(loaded->public_key().bytes == keys.public_key().bytes);
    codec::PublicKey public_key;
    REQUIRE(codec::load_public_key(pub, public_key).empty());
    CHECK(public_key.bytes == keys.public_key().bytes);

    SUBCASE("an existing pair is not overwritten without force, and is with it") {
        const std::string before = slurp(priv);
        const auto other = codec::KeyPair::generate();
        const std::string refused = codec::write_key_files(priv, pub, other, false);
        CHECK(refused.find("exists") != std::string::npos);
        CHECK(refused.find(priv) != std::string::npos);
        CHECK(slurp(priv) == before);
        {
            Umask narrow{0777};
            REQUIRE(codec::write_key_files(priv, pub, other, true).empty());
        }
        CHECK(slurp(priv) != before);
        CHECK(mode_of(priv) == 0600);
        CHECK(mode_of(pub) == 0644);
        CHECK(std::distance(fs::directory_iterator{dir.path}, fs::directory_iterator{}) == 2);  // no temporaries
    }
    SUBCASE("one existing file stops the whole pair") {
        fs::remove(priv);
        CHECK(!codec::write_key_files(priv, pub, keys, false).empty());
        CHECK(!fs::exists(priv));
    }
    SUBCASE("each refusal names the file and says why") {
        const auto refusal = [&](const std::string& path, bool want_private) {
            std::optional<codec::KeyPair> k;
            codec::PublicKey p;
            return want_private ? codec::load_private_key(path, k) : codec::load_public_key(path, p);
        };
        CHECK(refusal(pub, true).find("holds a public key") != std::string::npos);
        CHECK(refusal(priv, false).find("holds a private key") != std::string::npos);
        CHECK(refusal(dir.file("absent"), true).find(dir.file("absent")) != std::string::npos);
        CHECK(refusal(dir.path.string(), false).find("not a regular file") != std::string::npos);
        spit(dir.file("junk"), "hello\n");
        CHECK(refusal(dir.file("junk"), true).find("malformed") != std::string::npos);
        spit(dir.file("big"), std::string(10000, 'a'));
        CHECK(refusal(dir.file("big"), false).find("too large") != std::string::npos);
    }
}
