// Key file text (metrics-keygen's format) on arbitrary bytes: no crash; a key that parses is
// written back as text that parses to the same key; the two kinds never both accept one text.
#include "codec/sealed_box.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    const auto pub = codec::parse_public_key(text);
    const auto priv = codec::parse_private_key(text);
    if (pub && priv)
        std::abort();
    if (pub) {
        const auto again = codec::parse_public_key(codec::public_key_text(*pub));
        if (!again || again->bytes != pub->bytes || codec::key_kind(text) != codec::KeyKind::public_key)
            std::abort();
    }
    if (priv) {
        const auto again = codec::parse_private_key(codec::private_key_text(*priv));
        if (!again || again->public_key().bytes != priv->public_key().bytes ||
            codec::key_kind(text) != codec::KeyKind::private_key)
            std::abort();
    }
    return 0;
}
