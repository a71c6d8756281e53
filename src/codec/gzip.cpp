#include "codec/gzip.hpp"

#include <libdeflate.h>

#include <algorithm>
#include <new>

namespace codec {

Gzip::Gzip(int level) : level_(level)
{
}

Gzip::~Gzip()
{
    release();
}

void Gzip::release() noexcept
{
    libdeflate_free_compressor(compressor_);
    libdeflate_free_decompressor(decompressor_);
    compressor_ = nullptr;
    decompressor_ = nullptr;
}

libdeflate_compressor* Gzip::compressor()
{
    if (compressor_ == nullptr && (compressor_ = libdeflate_alloc_compressor(level_)) == nullptr)
        throw std::bad_alloc{};
    return compressor_;
}

libdeflate_decompressor* Gzip::decompressor()
{
    if (decompressor_ == nullptr && (decompressor_ = libdeflate_alloc_decompressor()) == nullptr)
        throw std::bad_alloc{};
    return decompressor_;
}

void Gzip::compress(std::string_view in, std::string& out)
{
    libdeflate_compressor* const compressor = this->compressor();
    out.resize(libdeflate_gzip_compress_bound(compressor, in.size()));
    const std::size_t n = libdeflate_gzip_compress(compressor, in.data(), in.size(), out.data(), out.size());
    // The bound is an upper limit for this compressor, so 0 ("did not fit") cannot happen.
    out.resize(n);
}

core::Result<void> Gzip::decompress(std::string_view in, core::ByteBuffer& out, std::size_t max_out)
{
    // The ISIZE trailer is attacker-controlled, so it never sizes the buffer: start from a
    // guess, double on "insufficient space" and retry the member, up to max_out. Growth copies
    // only the members already written; the rest of the buffer is left for libdeflate to fill.
    if (in.empty())
        return core::Errc::bad_encoding;
    out.clear();
    out.reserve(std::min(max_out, std::max<std::size_t>(in.size() * 4, 4096)));
    std::size_t capacity = std::min(max_out, out.capacity());
    libdeflate_decompressor* const decompressor = this->decompressor();
    std::size_t consumed = 0;
    while (consumed < in.size()) {
        std::size_t member_in = 0;
        std::size_t member_out = 0;
        const libdeflate_result r = libdeflate_gzip_decompress_ex(decompressor, in.data() + consumed,
            in.size() - consumed, out.data() + out.size(), capacity - out.size(), &member_in, &member_out);
        if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
            if (capacity >= max_out)
                return core::Errc::body_too_large;
            capacity = capacity > max_out / 2 ? max_out : std::max<std::size_t>(capacity * 2, 4096);
            out.reserve(capacity);
            continue;
        }
        if (r != LIBDEFLATE_SUCCESS)
            return core::Errc::bad_encoding;
        consumed += member_in;
        out.resize(out.size() + member_out);
    }
    return {};
}

core::Result<void> Gzip::decompress(std::string_view in, std::string& out, std::size_t max_out)
{
    core::ByteBuffer plain;
    if (auto r = decompress(in, plain, max_out); !r)
        return r;
    out.assign(plain.view());
    return {};
}

}  // namespace codec
