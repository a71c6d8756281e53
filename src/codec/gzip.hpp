#pragma once

#include "core/byte_buffer.hpp"
#include "core/result.hpp"

#include <string>
#include <string_view>

struct libdeflate_compressor;
struct libdeflate_decompressor;

namespace codec {

/// gzip (RFC 1952) with libdeflate. One object per thread (its compressor state is large:
/// never one per connection); steady-state calls do not allocate once `out` has grown to size.
/// The compressor (about 200 KB at level 1) and the decompressor are allocated at first use;
/// allocation failure throws std::bad_alloc.
class Gzip {
public:
    explicit Gzip(int level = 1);
    ~Gzip();
    Gzip(const Gzip&) = delete;
    Gzip& operator=(const Gzip&) = delete;

    /// Replaces `out` with the gzip of `in`.
    void compress(std::string_view in, std::string& out);
    /// Replaces `out` with the decompressed `in`. More than `max_out` bytes: Errc::body_too_large;
    /// invalid or truncated data, trailing garbage or no member at all (empty `in`):
    /// Errc::bad_encoding (truncated data that already fills `max_out` may report
    /// body_too_large instead). Concatenated gzip members are accepted. The ISIZE trailer is
    /// never trusted for allocation: `out` starts from a guess and doubles, and its bytes are
    /// written only by the decompressor (never zero-filled first). On error `out` is unspecified.
    core::Result<void> decompress(std::string_view in, core::ByteBuffer& out, std::size_t max_out);
    /// The same into a std::string (one more copy of the output: for tests and tools).
    core::Result<void> decompress(std::string_view in, std::string& out, std::size_t max_out);
    /// Frees the compressor and decompressor until their next use: for a caller that compresses
    /// a few kilobytes every few seconds (the agent), holding them between calls costs more
    /// memory than allocating them costs time.
    void release() noexcept;

private:
    libdeflate_compressor* compressor();
    libdeflate_decompressor* decompressor();

    libdeflate_compressor* compressor_ = nullptr;
    libdeflate_decompressor* decompressor_ = nullptr;
    int level_;
};

}  // namespace codec
