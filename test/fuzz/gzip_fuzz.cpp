// Gzip::decompress on arbitrary bytes: no crash, output bounded by the limit, and what comes
// out compresses and decompresses back to itself; compressing the input round-trips too.
#include "codec/gzip.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    constexpr std::size_t limit = 1 << 20;
    static codec::Gzip gzip;
    static std::string out;
    static std::string packed;
    static std::string again;
    const std::string_view in{reinterpret_cast<const char*>(data), size};
    if (auto r = gzip.decompress(in, out, limit)) {
        if (out.size() > limit)
            std::abort();
        gzip.compress(out, packed);
        if (!gzip.decompress(packed, again, limit) || again != out)
            std::abort();
    } else if (r.error() != core::Errc::bad_encoding && r.error() != core::Errc::body_too_large) {
        std::abort();
    }
    gzip.compress(in, packed);
    if (!gzip.decompress(packed, again, size) || again != in)
        std::abort();
    return 0;
}
