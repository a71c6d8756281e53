#pragma once

// Incremental, sans-I/O HTTP/1.1 parsers (RFC 9112). They never allocate and never read from
// sockets: the caller appends received bytes to its buffer and calls parse() again until the
// parser says done or error. A parser remembers offsets, not pointers, so the caller may grow
// (reallocate) its buffer between calls, as long as the bytes already given stay as they are.
//
// Framing is strict on purpose (request smuggling, RFC 9112 section 11.2): every ambiguity is
// an error and the connection must be closed after answering it.

#include "http/message.hpp"

#include "core/result.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace http {

/// Headers a parser can hold; `Limits::max_headers` above this acts as this.
inline constexpr std::size_t max_header_slots = 128;

struct Limits {
    std::size_t max_request_line = 8192;   ///< request or status line without CRLF: 414 (431 for responses)
    std::size_t max_uri = 4096;            ///< request target: 414
    std::size_t max_header_bytes = 16384;  ///< header lines with their CRLFs, trailers alike: 431
    std::size_t max_headers = 100;         ///< header lines: 431
    std::size_t max_body = 8 << 20;        ///< body bytes, after de-chunking: 413

    /// An upper bound on the bytes one message can occupy in a receive buffer (head, body, chunk
    /// framing and trailers): a parser reaches done or error before needing more, so a caller
    /// may cap its buffer here. Chunk framing beyond `max_body` + 64 KiB is refused (413), so
    /// a stream of tiny chunks cannot inflate the buffer.
    std::size_t max_message_bytes() const noexcept;
};

namespace detail {

/// What both parsers share: lines, header fields, body framing and in-place de-chunking.
/// The start line and the framing decision belong to the derived parser.
class MessageParser {
public:
    enum class State : std::uint8_t { need_more, done, error };

    MessageParser(const MessageParser&) = delete;
    MessageParser& operator=(const MessageParser&) = delete;

    /// Why parse() said error: bad_request, uri_too_long, header_too_large or body_too_large.
    core::Errc error() const noexcept { return error_; }
    /// When done: the bytes of this message from the start of the buffer (leading empty lines
    /// and skipped interim responses included); the rest belongs to the next message.
    std::size_t consumed() const noexcept { return consumed_; }
    /// The head has been parsed without error; the body may still be missing.
    bool headers_complete() const noexcept { return head_done_; }
    /// The Content-Length of the body once the head is complete; 0 when there is none or the
    /// body is chunked.
    std::size_t body_bytes_expected() const noexcept { return expected_; }

protected:
    /// How the body of a message is delimited, as the derived parser decides from the head.
    enum class Body : std::uint8_t { none, length, chunked, until_eof, interim };

    /// What the framing headers said, gathered line by line and judged once the head is
    /// complete (so that a later line's error, such as 431, still wins as it always did).
    struct Head {
        std::optional<std::uint64_t> content_length;
        bool chunked = false;
        bool connection_close = false;
        bool connection_keep_alive = false;
        bool expect_continue = false;
        bool malformed = false;  ///< a bad or conflicting Content-Length or Transfer-Encoding
        int hosts = 0;
    };

    MessageParser(Limits limits, core::Errc start_line_too_long) noexcept;
    ~MessageParser() = default;

    State run(std::span<char> buffer);
    State run_eof();
    void restart() noexcept;
    const Limits& limits() const noexcept { return limits_; }
    std::span<const Header> headers() const noexcept { return {headers_.data(), header_count_}; }
    const FieldIndex& fields() const noexcept { return fields_; }

    /// Parses the start line; views into it stay valid (they are rebased on reallocation).
    virtual core::Errc on_start_line(std::string_view line) = 0;
    /// As on_start_line for fast_head, for a line without control bytes but perhaps HTAB, at
    /// the start of a buffer of at least 16 bytes (which may be read): true when on_start_line
    /// would accept the line, with the same effect; false, changing nothing, when it would
    /// not, or for lines left to the line-by-line path.
    virtual bool on_start_line_fast(std::string_view line) = 0;
    /// Decides the framing from the complete head into `body`, or returns an error. (Not a
    /// Result<Body>: GCC 12 returns that through two narrow stack stores and one wide load, a
    /// store-forwarding stall on every message.)
    virtual core::Errc on_head(const Head& head, Body& body) = 0;
    /// The message is complete.
    virtual void on_done(std::string_view body) = 0;
    /// The buffer moved from `old_base` to `new_base`: every stored view must follow.
    virtual void on_relocate(std::uintptr_t old_base, char* new_base) noexcept = 0;

    /// Moves `v` from a buffer that started at `old_base` to the same offset in `new_base`.
    static void relocate(std::string_view& v, std::uintptr_t old_base, char* new_base) noexcept;

private:
    enum class Phase : std::uint8_t {
        start_line, headers, body_length, chunk_size, chunk_data, chunk_crlf, trailers, body_eof,
        done, error
    };

    std::optional<std::string_view> take_line(std::span<char> buffer, std::size_t max_len,
                                              core::Errc too_long);
    State fail(core::Errc e) noexcept;
    State finish(std::string_view body, std::size_t consumed);
    State head_complete(std::span<char> buffer);
    bool fast_head(std::span<char> buffer);
    core::Errc field_line(std::string_view line, bool store);
    core::Errc header_field(std::string_view line, std::size_t colon, bool store, bool vetted);
    void note_field(Field f, std::string_view value) noexcept;
    void restart_head() noexcept;

    Limits limits_;
    core::Errc start_line_too_long_;
    Phase phase_ = Phase::start_line;
    core::Errc error_ = core::Errc::ok;
    char* data_ = nullptr;          // the buffer of the last call, to follow reallocations
    std::size_t size_ = 0;          // its size
    std::size_t line_start_ = 0;    // first byte not yet parsed
    std::size_t scan_ = 0;          // where the search for the end of the current line stopped
    std::size_t section_start_ = 0; // first header (or trailer) line, for max_header_bytes
    std::size_t empty_lines_ = 0;   // skipped before the start line
    std::size_t interims_ = 0;      // 1xx responses skipped
    std::size_t body_start_ = 0;
    std::size_t body_end_ = 0;      // de-chunked bytes end here (chunked)
    std::uint64_t remaining_ = 0;   // of the Content-Length body or the current chunk
    std::size_t expected_ = 0;
    std::size_t consumed_ = 0;
    bool head_done_ = false;
    std::size_t header_count_ = 0;
    Head head_;
    FieldIndex fields_;
    std::array<Header, max_header_slots> headers_{};
};

}  // namespace detail

/// Parses one request at a time. Not copyable or movable: the request's header span points
/// into the parser. After done or error, parse() repeats its answer until reset().
class RequestParser final : private detail::MessageParser {
public:
    using MessageParser::State;

    explicit RequestParser(Limits limits = {}) noexcept;

    /// `buffer` holds every byte received since the start of this request (the caller appends
    /// and calls again; it may have moved). Mutable because a chunked body is de-chunked in
    /// place: after done, the bytes between the body's end and consumed() are unspecified.
    /// Errors (fatal, the connection must close after answering):
    /// - bad_request (400): malformed request line, version other than HTTP/1.0 or 1.1, a
    ///   target not in origin-form, bad token or field characters (NUL, bare CR, controls),
    ///   whitespace before a colon, obs-fold, bare LF, Content-Length with Transfer-Encoding,
    ///   differing Content-Lengths (identical duplicates are accepted), a Content-Length that
    ///   is not all digits or overflows, Transfer-Encoding other than exactly `chunked` (or in
    ///   HTTP/1.0), malformed chunk framing, missing or repeated Host in HTTP/1.1, more than 8
    ///   empty lines before the request line;
    /// - uri_too_long (414): request line over max_request_line, target over max_uri;
    /// - header_too_large (431): header lines (or trailers) over max_header_bytes, more than
    ///   max_headers header lines;
    /// - body_too_large (413): Content-Length over max_body (decided from the head, before the
    ///   body arrives), chunks adding up to more than max_body, excessive chunk framing.
    State parse(std::span<char> buffer) { return run(buffer); }

    using MessageParser::body_bytes_expected;
    using MessageParser::consumed;
    using MessageParser::error;
    using MessageParser::headers_complete;

    /// Valid when done; its headers, method, target, version, keep_alive and expect_continue
    /// already once headers_complete(). Views into the buffer of the last parse() call.
    const Request& request() const noexcept { return request_; }

    /// Ready for the next request (the caller drops the first consumed() bytes first).
    void reset() noexcept;

private:
    core::Errc on_start_line(std::string_view line) override;
    bool on_start_line_fast(std::string_view line) override;
    bool short_request_line(std::string_view before);
    core::Errc request_line(std::string_view method, std::string_view target,
                            std::string_view version);
    void set_request_line(Method known, std::string_view method, std::string_view target,
                          std::size_t q, int version);
    core::Errc on_head(const Head& head, Body& body) override;
    void on_done(std::string_view body) override;
    void on_relocate(std::uintptr_t old_base, char* new_base) noexcept override;

    Request request_;
};

/// Parses one response at a time (for the client), in the same style. Interim 1xx responses
/// are skipped (101 is an error: we never ask to switch protocols); 204, 304 and answers to
/// HEAD have no body; a response without Content-Length or chunked framing ends at EOF.
/// The status line is limited by max_request_line (header_too_large); max_body applies.
class ResponseParser final : private detail::MessageParser {
public:
    using MessageParser::State;

    explicit ResponseParser(Limits limits = {}) noexcept;

    /// As RequestParser::parse. Errors: bad_request, header_too_large, body_too_large.
    State parse(std::span<char> buffer) { return run(buffer); }

    /// The peer closed the connection after the bytes given to the last parse() call (that
    /// buffer must still be alive): completes a body delimited by EOF; any other incomplete
    /// response is a bad_request (truncated).
    State finish_eof() { return run_eof(); }

    /// The request was HEAD: the response has no body whatever its headers say. Survives reset().
    void set_head_request(bool head) noexcept { head_request_ = head; }

    using MessageParser::body_bytes_expected;
    using MessageParser::consumed;
    using MessageParser::error;
    using MessageParser::headers_complete;

    /// Valid when done (status, version and headers once headers_complete()).
    const Response& response() const noexcept { return response_; }

    void reset() noexcept;

private:
    core::Errc on_start_line(std::string_view line) override;
    bool on_start_line_fast(std::string_view line) override;
    core::Errc on_head(const Head& head, Body& body) override;
    void on_done(std::string_view body) override;
    void on_relocate(std::uintptr_t old_base, char* new_base) noexcept override;

    Response response_;
    bool head_request_ = false;
};

}  // namespace http
