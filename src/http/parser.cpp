#include "http/parser.hpp"

#include "core/bytes.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <limits>

#if defined(__SSE4_1__)
#include <smmintrin.h>
#elif defined(__SSSE3__)
#include <tmmintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace http {

using core::Errc;

namespace {

// RFC 9112 2.2 asks servers to skip at least one; a bound keeps a stream of CRLFs from
// holding a connection open for free.
constexpr std::size_t max_empty_lines = 8;
// A chunk-size line with its extensions (which we ignore).
constexpr std::size_t max_chunk_line = 1024;
// Chunk framing allowed on top of max_body before the sender counts as abusive.
constexpr std::size_t chunk_overhead_slack = 64 * 1024;
// 1xx responses skipped before the final one (100 Continue, 103 Early Hints).
constexpr std::size_t max_interims = 2;

constexpr bool is_tchar(unsigned char c) noexcept
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

constexpr auto make_table(bool (*pred)(unsigned char)) noexcept
{
    std::array<bool, 256> t{};
    for (unsigned i = 0; i < 256; ++i)
        t[i] = pred(static_cast<unsigned char>(i));
    return t;
}

constexpr auto tchar_table = make_table(is_tchar);
// field-vchar, SP and HTAB (obs-text included): everything but controls and DEL.
constexpr auto field_table = make_table(
    [](unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); });
// A request target has no whitespace either.
constexpr auto target_table = make_table([](unsigned char c) { return c > 0x20 && c != 0x7f; });

static_assert(max_header_slots < 256, "FieldIndex keeps slots in a byte");

bool all_of(std::string_view s, const std::array<bool, 256>& table) noexcept
{
    for (char c : s)
        if (!table[static_cast<unsigned char>(c)])
            return false;
    return true;
}

/// s.find(c) for a short `s`, eight bytes per step.
std::size_t find_byte(std::string_view s, char c) noexcept
{
    const auto u = static_cast<unsigned char>(c);
    const std::size_t i = core::bytes::find_first(
        s, 0, [u](std::uint64_t w) { return core::bytes::equal_to(w, u); }, [u](unsigned char b) { return b == u; });
    return i == s.size() ? std::string_view::npos : i;
}

/// Whether `w` may hold a control byte (below `min`, which is at most 0x80) or DEL: exact
/// for "none", so a word without them skips the per-byte table.
constexpr bool maybe_control(std::uint64_t w, unsigned char min) noexcept
{
    return (core::bytes::below(w, min) | core::bytes::equal_to(w, 0x7f)) != 0;
}

/// all_of(s, table) for a table that refuses every byte below `min` and DEL, and refuses
/// nothing else except perhaps some bytes below `min`: eight bytes per step.
// always_inline here and on the per-line members below: GCC keeps them out of line on its
// own, and inlining them into run() saves about 270 instructions per small request (callgrind).
[[gnu::always_inline]] inline bool all_printable(std::string_view s, unsigned char min, const std::array<bool, 256>& table) noexcept
{
    if (s.size() < 8)
        return all_of(s, table);
    bool maybe = maybe_control(core::bytes::load(s.data() + s.size() - 8), min);  // the tail, overlapping
    for (std::size_t i = 0; i + 8 < s.size() && !maybe; i += 8)
        maybe = maybe_control(core::bytes::load(s.data() + i), min);
    return !maybe || all_of(s, table);
}

/// The first LF in [p, end), or nullptr: inline, since header lines are short and a libc call
/// costs more than scanning them.
const char* find_lf(const char* p, const char* end) noexcept
{
#if defined(__SSE2__)
    const __m128i lf = _mm_set1_epi8('\n');
    for (; end - p >= 16; p += 16) {
        const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, lf)));
        if (mask != 0)
            return p + std::countr_zero(mask);
    }
#endif
    for (; p < end; ++p)
        if (*p == '\n')
            return p;
    return nullptr;
}

#if defined(__SSE2__)
/// What fast_head needs to know of 64 bytes of a head: bit i of each mask is byte i.
struct ChunkBits {
    std::uint64_t lf;
    std::uint64_t cr;
    std::uint64_t bad;  // controls other than HTAB, CR and LF, and DEL
};

// The classes of bytes a head may hold, one bit each (classify): LF and CR in the bits that
// movemask reads from a class and from twice a class, the errors in the low bits.
constexpr unsigned char class_lf = 0x80;
constexpr unsigned char class_cr = 0x40;
constexpr unsigned char class_bad = 0x07;

/// The class of each of the 16 bytes of `x`.
[[gnu::always_inline]] inline __m128i classify(__m128i x) noexcept
{
#if defined(__SSSE3__)
    // Two nibble lookups ANDed (as in simdjson): a bit survives when both nibbles allow it.
    // Bad: bit 0 for 0x00-0x0f but HTAB, LF and CR; bit 1 for 0x10-0x1f; bit 2 for DEL (0x7f).
    // Bytes from 0x80 have a high nibble whose entry is 0.
    const __m128i by_low = _mm_setr_epi8(3, 3, 3, 3, 3, 3, 3, 3, 3, 2, static_cast<char>(class_lf | 2), 3, 3,
                                         class_cr | 2, 3, 7);
    const __m128i by_high = _mm_setr_epi8(static_cast<char>(class_lf | class_cr | 1), 2, 0, 0, 0, 0, 0, 4, 0, 0,
                                          0, 0, 0, 0, 0, 0);
    const __m128i nibble = _mm_set1_epi8(0x0f);
    const __m128i low = _mm_shuffle_epi8(by_low, _mm_and_si128(x, nibble));
    const __m128i high = _mm_shuffle_epi8(by_high, _mm_and_si128(_mm_srli_epi16(x, 4), nibble));
    return _mm_and_si128(low, high);
#else
    const __m128i lf = _mm_cmpeq_epi8(x, _mm_set1_epi8('\n'));
    const __m128i cr = _mm_cmpeq_epi8(x, _mm_set1_epi8('\r'));
    const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
    const __m128i tab = _mm_cmpeq_epi8(x, _mm_set1_epi8('\t'));
    const __m128i allowed = _mm_or_si128(_mm_or_si128(lf, cr), tab);
    const __m128i bad = _mm_or_si128(_mm_andnot_si128(allowed, control),
                                     _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f)));
    return _mm_or_si128(_mm_or_si128(_mm_and_si128(lf, _mm_set1_epi8(static_cast<char>(class_lf))),
                                     _mm_and_si128(cr, _mm_set1_epi8(class_cr))),
                        _mm_and_si128(bad, _mm_set1_epi8(class_bad)));
#endif
}

// Bit i is byte i of the 16 classes `c`.
[[gnu::always_inline]] inline std::uint64_t lf_bits(__m128i c) noexcept
{
    return static_cast<unsigned>(_mm_movemask_epi8(c));
}

[[gnu::always_inline]] inline std::uint64_t cr_bits(__m128i c) noexcept
{
    return static_cast<unsigned>(_mm_movemask_epi8(_mm_add_epi8(c, c)));
}

[[gnu::always_inline]] inline std::uint64_t bad_bits(__m128i c) noexcept
{
    const __m128i fine = _mm_cmpeq_epi8(_mm_and_si128(c, _mm_set1_epi8(class_bad)), _mm_setzero_si128());
    return static_cast<unsigned>(_mm_movemask_epi8(fine)) ^ 0xffffU;
}

/// Whether any of the 16 classes `c` is an error.
[[gnu::always_inline]] inline bool any_bad(__m128i c) noexcept
{
#if defined(__SSE4_1__)
    return _mm_testz_si128(c, _mm_set1_epi8(class_bad)) == 0;
#else
    return bad_bits(c) != 0;
#endif
}

[[gnu::always_inline]] inline __m128i load16(const char* p) noexcept
{
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

/// Classifies the bytes [at, at + 64) of `data` (`size` bytes, at least 16, at < size);
/// bytes at or past `size` have no bits.
[[gnu::always_inline]] inline ChunkBits scan_chunk(const char* data, std::size_t at,
                                                   std::size_t size) noexcept
{
    ChunkBits bits{0, 0, 0};
    if (size - at >= 64) {
        // Error bytes are rare: one test for the whole chunk, their positions only if any.
        __m128i any = _mm_setzero_si128();
        for (unsigned i = 0; i < 4; ++i) {
            const __m128i c = classify(load16(data + at + 16 * i));
            bits.lf |= lf_bits(c) << 16 * i;
            bits.cr |= cr_bits(c) << 16 * i;
            any = _mm_or_si128(any, c);
        }
        if (any_bad(any)) [[unlikely]] {
            for (unsigned i = 0; i < 4; ++i)
                bits.bad |= bad_bits(classify(load16(data + at + 16 * i))) << 16 * i;
        }
        return bits;
    }
    // The last blocks: one that would end past the buffer overlaps the one before it instead.
    for (unsigned i = 0; i < 4 && at + 16 * i < size; ++i) {
        const std::size_t block = at + 16 * i;
        const std::size_t load_at = std::min(block, size - 16);
        const auto skip = static_cast<unsigned>(block - load_at);
        const __m128i c = classify(load16(data + load_at));
        bits.lf |= (lf_bits(c) >> skip) << 16 * i;
        bits.cr |= (cr_bits(c) >> skip) << 16 * i;
        bits.bad |= (bad_bits(c) >> skip) << 16 * i;
    }
    return bits;
}

/// The first colon in `line`, which lies in a buffer of `size` bytes (at least 16) that
/// starts at `first`, or npos: one block for the names we know, all shorter than 16 bytes.
[[gnu::always_inline]] inline std::size_t find_colon(std::string_view line, const char* first,
                                                     std::size_t size) noexcept
{
    const auto at = static_cast<std::size_t>(line.data() - first);
    const std::size_t load_at = std::min(at, size - 16);  // as in scan_chunk
    const auto skip = static_cast<unsigned>(at - load_at);
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(first + load_at));
    const unsigned colons =
        static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(':')))) >> skip;
    if (colons != 0) {
        const auto colon = static_cast<std::size_t>(std::countr_zero(colons));
        return colon < line.size() ? colon : std::string_view::npos;
    }
    // No colon in the 16 - skip bytes from `at` on.
    return line.size() <= 16 - skip ? std::string_view::npos : find_byte(line, ':');
}

// Heads the fast path takes: longer ones are rare, and the bound keeps a failed attempt cheap.
constexpr std::size_t max_fast_head = 512;
#endif

/// A lowercase header name with the case bit (0x20) of each of its letters, for is_name.
template <std::size_t N>
struct LowerName {
    static constexpr std::size_t size = N - 1;
    static_assert(size >= 4);
    char text[N]{};
    char case_bits[N]{};

    consteval LowerName(const char (&s)[N])
    {
        for (std::size_t i = 0; i < N; ++i) {
            text[i] = s[i];
            case_bits[i] = s[i] >= 'a' && s[i] <= 'z' ? 0x20 : 0;
        }
    }
};

template <class Word>
Word load(const char* p) noexcept
{
    Word w;
    std::memcpy(&w, p, sizeof w);
    return w;
}

/// Whether `name` (of L's size) is L ignoring the case of letters: a whole word at a time,
/// setting the case bit only where L has a letter, so it is exact for any bytes.
template <LowerName L, class Word>
bool is_name_words(const char* name) noexcept
{
    constexpr std::size_t w = sizeof(Word);
    const auto differs = [&](std::size_t i) {
        return (load<Word>(name + i) | load<Word>(L.case_bits + i)) ^ load<Word>(L.text + i);
    };
    Word diff = differs(L.size - w);  // the tail, overlapping the last full word
    for (std::size_t i = 0; i + w < L.size; i += w)
        diff |= differs(i);
    return diff == 0;
}

template <LowerName L>
bool is_name(std::string_view name) noexcept
{
    if constexpr (L.size < 8)
        return is_name_words<L, std::uint32_t>(name.data());
    else
        return is_name_words<L, std::uint64_t>(name.data());
}

/// Which Field the token `name` is, if any.
[[gnu::always_inline]] inline std::optional<Field> known_field(std::string_view name) noexcept
{
    switch (name.size()) {
    case 4:
        if (is_name<"host">(name)) return Field::host;
        break;
    case 6:
        if (is_name<"expect">(name)) return Field::expect;
        break;
    case 10:
        if (is_name<"connection">(name)) return Field::connection;
        if (is_name<"hashsha256">(name)) return Field::hash_sha256;
        break;
    case 12:
        if (is_name<"content-type">(name)) return Field::content_type;
        break;
    case 14:
        if (is_name<"content-length">(name)) return Field::content_length;
        break;
    case 15:
        if (is_name<"accept-encoding">(name)) return Field::accept_encoding;
        break;
    case 16:
        if (is_name<"content-encoding">(name)) return Field::content_encoding;
        break;
    case 17:
        if (is_name<"transfer-encoding">(name)) return Field::transfer_encoding;
        break;
    default:
        break;
    }
    return std::nullopt;
}

/// Sets f's slot in `index` to `line` unless it has one. The first eight slots are read,
/// changed and written back as one word, because on_head copies them as one: a wide load of
/// bytes stored one at a time cannot be forwarded from them (a store-forwarding stall of about
/// 2 % of a small request, perf).
[[gnu::always_inline]] inline void first_slot(FieldIndex& index, Field f, std::uint8_t line) noexcept
{
    constexpr std::size_t word_slots = sizeof(std::uint64_t);
    static_assert(field_count > word_slots && field_count <= word_slots + 1);
    const auto i = static_cast<std::size_t>(f);
    if (i == word_slots) {
        if (index.slot[i] == 0)
            index.slot[i] = line;
        return;
    }
    std::uint64_t word;
    std::memcpy(&word, index.slot.data(), sizeof word);
    const auto shift = static_cast<unsigned>(8 * i);
    if ((word >> shift & 0xff) == 0) {
        word |= std::uint64_t{line} << shift;
        std::memcpy(index.slot.data(), &word, sizeof word);
    }
}

bool is_token(std::string_view s) noexcept { return !s.empty() && all_of(s, tchar_table); }

constexpr bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

std::optional<std::uint64_t> parse_decimal(std::string_view s) noexcept
{
    if (s.empty())
        return std::nullopt;
    // Up to 19 digits cannot overflow: the overflow check (a division) only for longer ones.
    const bool may_overflow = s.size() > std::numeric_limits<std::uint64_t>::digits10;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return std::nullopt;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (may_overflow && v > (std::numeric_limits<std::uint64_t>::max() - d) / 10)
            return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

/// The minor version of "HTTP/1.1" (1) or "HTTP/1.0" (0); -1 for anything else. (Not an
/// optional<int>: GCC 12 returns that through two narrow stack stores and one wide load, a
/// store-forwarding stall on every message.)
int parse_version(std::string_view v) noexcept
{
    if (v == "HTTP/1.1")
        return 1;
    if (v == "HTTP/1.0")
        return 0;
    return -1;
}

// Sized compares first: each == below is then one integer compare.
[[gnu::always_inline]] inline Method method_of(std::string_view m) noexcept
{
    switch (m.size()) {
    case 3:
        return m == "GET" ? Method::get : m == "PUT" ? Method::put : Method::other;
    case 4:
        return m == "POST" ? Method::post : m == "HEAD" ? Method::head : Method::other;
    case 5:
        return m == "PATCH" ? Method::patch : Method::other;
    case 6:
        return m == "DELETE" ? Method::delete_ : Method::other;
    case 7:
        return m == "OPTIONS" ? Method::options : Method::other;
    default:
        return Method::other;
    }
}

bool keep_alive(int version_minor, bool close, bool keep) noexcept
{
    return !close && (version_minor == 1 || keep);
}

}  // namespace

std::size_t Limits::max_message_bytes() const noexcept
{
    const std::size_t head = (1 + max_interims) *
        (2 * max_empty_lines + max_request_line + 2 + max_header_bytes + 2);
    const std::size_t chunked = max_body + (max_body + chunk_overhead_slack) + max_chunk_line + 2;
    return head + chunked + max_header_bytes + 2;
}

namespace detail {

MessageParser::MessageParser(Limits limits, Errc start_line_too_long) noexcept
    : limits_(limits), start_line_too_long_(start_line_too_long)
{
    limits_.max_headers = std::min(limits_.max_headers, max_header_slots);
}

void MessageParser::restart() noexcept
{
    phase_ = Phase::start_line;
    error_ = Errc::ok;
    data_ = nullptr;
    size_ = line_start_ = scan_ = section_start_ = empty_lines_ = interims_ = 0;
    body_start_ = body_end_ = 0;
    remaining_ = 0;
    expected_ = consumed_ = 0;
    head_done_ = false;
    restart_head();
}

void MessageParser::restart_head() noexcept
{
    header_count_ = 0;
    head_ = {};
    fields_ = {};
}

void MessageParser::relocate(std::string_view& v, std::uintptr_t old_base, char* new_base) noexcept
{
    // Offsets through integers: the old buffer may be gone, so no pointer arithmetic on it.
    const std::uintptr_t offset = reinterpret_cast<std::uintptr_t>(v.data()) - old_base;
    v = {new_base + offset, v.size()};
}

MessageParser::State MessageParser::fail(Errc e) noexcept
{
    phase_ = Phase::error;
    error_ = e;
    return State::error;
}

MessageParser::State MessageParser::finish(std::string_view body, std::size_t consumed)
{
    phase_ = Phase::done;
    consumed_ = consumed;
    on_done(body);
    return State::done;
}

[[gnu::always_inline]] inline std::optional<std::string_view> MessageParser::take_line(std::span<char> buffer,
                                                         std::size_t max_len, Errc too_long)
{
    const char* base = buffer.data();
    const std::size_t end = buffer.size();
    const char* lf = find_lf(base + scan_, base + end);
    // Whether the bytes of the line so far, up to `stop`, already exceed max_len content bytes
    // plus the CR that may still be waiting for its LF. Checked first, complete line or not,
    // so that splitting the input never changes which error is reported.
    const auto over = [&](std::size_t stop) {
        const std::size_t len = stop - line_start_;
        return len > max_len + 1 || (len == max_len + 1 && base[stop - 1] != '\r');
    };
    if (lf == nullptr) {
        scan_ = end;
        if (over(end))
            fail(too_long);
        return std::nullopt;
    }
    const auto at = static_cast<std::size_t>(lf - base);
    if (over(at)) {
        fail(too_long);
        return std::nullopt;
    }
    if (at == line_start_ || base[at - 1] != '\r') {
        fail(Errc::bad_request);  // bare LF
        return std::nullopt;
    }
    std::string_view line{base + line_start_, at - 1 - line_start_};
    line_start_ = scan_ = at + 1;
    return line;
}

[[gnu::always_inline]] inline Errc MessageParser::field_line(std::string_view line, bool store)
{
    const std::size_t colon = find_byte(line, ':');
    if (colon == std::string_view::npos)
        return Errc::bad_request;
    return header_field(line, colon, store, false);
}

/// The header line `line` with its first colon at `colon`. `vetted`: fast_head has already
/// checked that the line has no control byte but HTAB, nor DEL.
[[gnu::always_inline]] inline Errc MessageParser::header_field(std::string_view line,
                                                               std::size_t colon, bool store,
                                                               bool vetted)
{
    // The name is a token up to the colon: this refuses a leading space (obs-fold: deprecated,
    // and a smuggling vector) and whitespace before the colon. A known name is a token.
    const std::string_view name{line.data(), colon};
    const std::optional<Field> field = known_field(name);
    if (!field && !is_token(name))
        return Errc::bad_request;
    // SP and HTAB; in a vetted line they are the only bytes up to 0x20, one compare.
    const auto blank = [vetted](char c) {
        return vetted ? static_cast<unsigned char>(c) <= ' ' : is_space(c);
    };
    // Leading whitespace first: it is valid anyway, and the check then sees fewer bytes.
    std::string_view value{line.data() + colon + 1, line.size() - colon - 1};
    while (!value.empty() && blank(value.front()))
        value.remove_prefix(1);
    if (!vetted && !all_printable(value, 0x20, field_table))
        return Errc::bad_request;
    while (!value.empty() && blank(value.back()))
        value.remove_suffix(1);
    if (store) {
        if (header_count_ == limits_.max_headers)
            return Errc::header_too_large;
        headers_[header_count_++] = {name, value};
        if (field)
            note_field(*field, value);
    }
    return Errc::ok;
}

[[gnu::always_inline]] inline void MessageParser::note_field(Field f, std::string_view value) noexcept
{
    first_slot(fields_, f, static_cast<std::uint8_t>(header_count_));  // the line just stored, plus one
    switch (f) {
    case Field::content_length: {
        const auto n = parse_decimal(value);
        if (!n || (head_.content_length && *head_.content_length != *n))
            head_.malformed = true;
        else
            head_.content_length = *n;  // the value: copying the optional stalls (see reset)
        break;
    }
    case Field::transfer_encoding:
        // We implement chunked only, and a repeated field could hide another coding.
        if (head_.chunked || !iequals(value, "chunked"))
            head_.malformed = true;
        head_.chunked = true;
        break;
    case Field::connection:
        head_.connection_close |= header_has_token(value, "close");
        head_.connection_keep_alive |= header_has_token(value, "keep-alive");
        break;
    case Field::expect:
        head_.expect_continue = iequals(value, "100-continue");
        break;
    case Field::host:
        ++head_.hosts;
        break;
    default:
        break;
    }
}

MessageParser::State MessageParser::head_complete(std::span<char> buffer)
{
    const Head& head = head_;
    if (head.malformed || (head.chunked && head.content_length))
        return fail(Errc::bad_request);

    Body body = Body::none;
    if (const Errc e = on_head(head, body); e != Errc::ok)
        return fail(e);
    body_start_ = body_end_ = line_start_;
    switch (body) {
    case Body::interim:
        // Start over after the interim response; consumed() still counts it.
        if (++interims_ > max_interims)
            return fail(Errc::bad_request);
        restart_head();
        empty_lines_ = 0;
        phase_ = Phase::start_line;
        return State::need_more;
    case Body::none:
        head_done_ = true;
        return finish({buffer.data() + body_start_, 0}, body_start_);
    case Body::length:
        if (*head.content_length > limits_.max_body)
            return fail(Errc::body_too_large);
        // Through a register: GCC 12 otherwise stores both as one pair built from a 16-byte
        // load of the length and the field before it, written apart (a store-forwarding
        // stall, perf).
        remaining_ = core::bytes::opaque(*head.content_length);
        expected_ = static_cast<std::size_t>(remaining_);
        phase_ = Phase::body_length;
        break;
    case Body::chunked:
        phase_ = Phase::chunk_size;
        break;
    case Body::until_eof:
        phase_ = Phase::body_eof;
        break;
    }
    head_done_ = true;
    return State::need_more;
}

/// The whole head of a message that starts at buffer[0], when it is all there and plain: one
/// SIMD pass checks every byte and finds the line ends, then each line gets only the checks
/// that pass cannot do. Leaves the parser as the line-by-line path does after the empty line
/// (head_complete then decides, as always) and returns true. Returns false, having changed
/// nothing that the line-by-line path will not set again, for anything else: bytes that may
/// be an error (controls, bare CR or LF), a head incomplete or over max_fast_head bytes,
/// leading empty lines, a start line on_start_line_fast leaves alone, a bad header line,
/// limits exceeded. A line it accepts, the line-by-line path accepts with the same result, so
/// which error a head gets, and which error comes first, stays that path's decision.
bool MessageParser::fast_head([[maybe_unused]] std::span<char> buffer)
{
#if !defined(__SSE2__)
    return false;  // the line-by-line path does it all
#else
    const char* base = buffer.data();
    const std::size_t size = buffer.size();
    if (size < 16)
        return false;  // a block; no complete HTTP/1.1 head with a Host is that short anyway
    // 64 bytes at a time: each LF before the first byte that may be an error (a control, a
    // bare CR or LF) ends a line, whose CR is the byte before it.
    std::size_t line = 0;   // where the current line starts
    std::uint64_t cr_carry = 0;  // a CR in the last byte of the previous chunk
    for (std::size_t at = 0; at < std::min(size, max_fast_head); at += 64) {
        const ChunkBits b = scan_chunk(base, at, size);
        const std::uint64_t errors = b.bad | (b.lf ^ (b.cr << 1 | cr_carry));
        std::uint64_t lfs = b.lf & ((errors & (0 - errors)) - 1);  // all of them when no error
        for (; lfs != 0; lfs &= lfs - 1) {
            const std::size_t lf = at + static_cast<std::size_t>(std::countr_zero(lfs));
            const std::string_view text{base + line, lf - 1 - line};
            if (line == 0) {
                if (text.size() > limits_.max_request_line || !on_start_line_fast(text))
                    return false;
                section_start_ = lf + 1;
            } else if (text.empty()) {
                if (line - section_start_ > limits_.max_header_bytes)
                    break;
                line_start_ = scan_ = lf + 1;
                phase_ = Phase::headers;
                return true;
            } else if (const std::size_t colon = find_colon(text, base, size);
                       colon == std::string_view::npos ||
                       header_field(text, colon, true, true) != Errc::ok) {
                break;
            }
            line = lf + 1;
        }
        if (lfs != 0 || errors != 0)
            break;
        cr_carry = b.cr >> 63;
    }
    restart_head();
    return false;
#endif
}

MessageParser::State MessageParser::run(std::span<char> buffer)
{
    assert(buffer.size() >= size_);  // the caller only appends
    if (size_ > 0 && data_ != buffer.data()) {
        const auto old_base = reinterpret_cast<std::uintptr_t>(data_);
        for (Header& h : std::span{headers_.data(), header_count_}) {
            relocate(h.name, old_base, buffer.data());
            relocate(h.value, old_base, buffer.data());
        }
        on_relocate(old_base, buffer.data());
    }
    data_ = buffer.data();
    size_ = buffer.size();

    // The first call for a message that arrived whole, the common case.
    if (phase_ == Phase::start_line && scan_ == 0 && fast_head(buffer)) {
        if (const State s = head_complete(buffer); s != State::need_more)
            return s;
    }
    for (;;) {
        switch (phase_) {
        case Phase::start_line: {
            const auto line = take_line(buffer, limits_.max_request_line, start_line_too_long_);
            if (!line)
                return phase_ == Phase::error ? State::error : State::need_more;
            if (line->empty()) {
                if (++empty_lines_ > max_empty_lines)
                    return fail(Errc::bad_request);
                continue;
            }
            if (const Errc e = on_start_line(*line); e != Errc::ok)
                return fail(e);
            section_start_ = line_start_;
            phase_ = Phase::headers;
            continue;
        }
        case Phase::headers:
        case Phase::trailers: {
            // Room left for header lines; an empty line always fits.
            const std::size_t used = line_start_ - section_start_;
            const std::size_t room = limits_.max_header_bytes - used;
            const auto line = take_line(buffer, room >= 2 ? room - 2 : 0, Errc::header_too_large);
            if (!line)
                return phase_ == Phase::error ? State::error : State::need_more;
            const bool trailers = phase_ == Phase::trailers;
            if (line->empty()) {
                if (trailers)
                    return finish({buffer.data() + body_start_, body_end_ - body_start_},
                                  line_start_);
                if (const State s = head_complete(buffer); s != State::need_more)
                    return s;
                continue;
            }
            if (const Errc e = field_line(*line, !trailers); e != Errc::ok)
                return fail(e);
            continue;
        }
        case Phase::body_length:
            if (size_ - body_start_ < remaining_)
                return State::need_more;
            return finish({buffer.data() + body_start_, static_cast<std::size_t>(remaining_)},
                          body_start_ + static_cast<std::size_t>(remaining_));
        case Phase::chunk_size: {
            // Bytes of framing so far: chunk-size lines, CRLFs and extensions.
            if (line_start_ - body_end_ > limits_.max_body + chunk_overhead_slack)
                return fail(Errc::body_too_large);
            const auto line = take_line(buffer, max_chunk_line, Errc::bad_request);
            if (!line)
                return phase_ == Phase::error ? State::error : State::need_more;
            std::uint64_t size = 0;
            std::size_t digits = 0;
            for (; digits < line->size(); ++digits) {
                const char c = (*line)[digits];
                unsigned d = 0;
                if (c >= '0' && c <= '9')
                    d = static_cast<unsigned>(c - '0');
                else if (c >= 'a' && c <= 'f')
                    d = static_cast<unsigned>(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                    d = static_cast<unsigned>(c - 'A' + 10);
                else
                    break;
                if (size > (std::numeric_limits<std::uint64_t>::max() >> 4))
                    return fail(Errc::bad_request);  // overflow
                size = size << 4 | d;
            }
            // After the digits: nothing, or (BWS) ';' and extensions, which we ignore.
            std::string_view ext = line->substr(digits);
            while (!ext.empty() && is_space(ext.front()))
                ext.remove_prefix(1);
            if (digits == 0 || (!ext.empty() && ext.front() != ';') || !all_of(ext, field_table))
                return fail(Errc::bad_request);
            if (size > limits_.max_body - (body_end_ - body_start_))
                return fail(Errc::body_too_large);
            if (size == 0) {
                section_start_ = line_start_;
                phase_ = Phase::trailers;
                continue;
            }
            remaining_ = size;
            phase_ = Phase::chunk_data;
            continue;
        }
        case Phase::chunk_data: {
            const std::size_t n = static_cast<std::size_t>(
                std::min<std::uint64_t>(remaining_, size_ - line_start_));
            // De-chunk in place: each data byte moves once, left over the framing before it.
            if (body_end_ != line_start_ && n > 0)
                std::memmove(buffer.data() + body_end_, buffer.data() + line_start_, n);
            body_end_ += n;
            line_start_ += n;
            scan_ = line_start_;
            remaining_ -= n;
            if (remaining_ > 0)
                return State::need_more;
            phase_ = Phase::chunk_crlf;
            continue;
        }
        case Phase::chunk_crlf:
            if (size_ - line_start_ < 1)
                return State::need_more;
            if (buffer[line_start_] != '\r')
                return fail(Errc::bad_request);
            if (size_ - line_start_ < 2)
                return State::need_more;
            if (buffer[line_start_ + 1] != '\n')
                return fail(Errc::bad_request);
            line_start_ = scan_ = line_start_ + 2;
            phase_ = Phase::chunk_size;
            continue;
        case Phase::body_eof:
            if (size_ - body_start_ > limits_.max_body)
                return fail(Errc::body_too_large);
            return State::need_more;
        case Phase::done:
            return State::done;
        case Phase::error:
            return State::error;
        }
    }
}

MessageParser::State MessageParser::run_eof()
{
    switch (phase_) {
    case Phase::done:
        return State::done;
    case Phase::error:
        return State::error;
    case Phase::body_eof:
        return finish({data_ + body_start_, size_ - body_start_}, size_);
    default:
        return fail(Errc::bad_request);  // truncated
    }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------

RequestParser::RequestParser(Limits limits) noexcept : MessageParser(limits, Errc::uri_too_long) {}

void RequestParser::reset() noexcept
{
    restart();
    // Every member of Request set to its default one by one, neither `request_ = {}` nor
    // std::construct_at nor a copy of a constant: GCC 12 builds the temporary of the first
    // with narrow stores and copies it with 16-byte loads, which cannot be forwarded from them
    // (a stall of about 5 % of a small request, perf), zero-fills for the second with
    // `rep stos`, whose start-up cost about 4 % (perf), and perf put about 2 % of a small
    // request on the last store of the third (123 bytes loaded and stored).
    static constexpr Request empty{};
    request_.method = empty.method;
    request_.method_text = {};
    request_.target = {};
    request_.path = {};
    request_.query = {};
    request_.version_minor = empty.version_minor;
    request_.headers = {};
    request_.body = {};
    request_.keep_alive = empty.keep_alive;
    request_.expect_continue = empty.expect_continue;
    request_.fields = {};
}

Errc RequestParser::on_start_line(std::string_view line)
{
    const std::size_t sp1 = find_byte(line, ' ');
    if (sp1 == std::string_view::npos)
        return Errc::bad_request;
    const std::string_view rest = line.substr(sp1 + 1);
    const std::size_t sp2 = find_byte(rest, ' ');
    if (sp2 == std::string_view::npos)
        return Errc::bad_request;
    return request_line(line.substr(0, sp1), rest.substr(0, sp2), rest.substr(sp2 + 1));
}

bool RequestParser::on_start_line_fast(std::string_view line)
{
    // " HTTP/1.1" at the end and no space in the target (request_line refuses one) split the
    // line where on_start_line does. HTTP/1.0 is rare enough for the line-by-line path.
    constexpr std::string_view http11 = " HTTP/1.1";
    if (line.size() <= http11.size() || line.substr(line.size() - http11.size()) != http11)
        return false;
    const std::string_view before = line.substr(0, line.size() - http11.size());
#if defined(__SSE2__)
    if (before.size() <= 16)
        return short_request_line(before);
#endif
    const std::size_t sp = find_byte(before, ' ');
    if (sp == std::string_view::npos)
        return false;
    return request_line(before.substr(0, sp), before.substr(sp + 1), http11.substr(1)) == Errc::ok;
}

#if defined(__SSE2__)
/// on_start_line_fast for a method and target of at most 16 bytes together (`before`): one
/// block finds the space, refused bytes and the query at once. The line holds no control
/// byte but HTAB, nor DEL, so a space or HTAB is all target_table can refuse in the target.
/// Same answer and effect as request_line with version 1 for the split at the first space.
[[gnu::always_inline]] inline bool RequestParser::short_request_line(std::string_view before)
{
    // The 16 bytes from the start of the line are in the buffer (fast_head's contract).
    const __m128i x = load16(before.data());
    const auto bits = [x](char c) {
        return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(c))));
    };
    const unsigned in_before = (1U << before.size()) - 1;
    const unsigned spaces = bits(' ') & in_before;
    if (spaces == 0)
        return false;
    const auto sp = static_cast<unsigned>(std::countr_zero(spaces));
    const unsigned in_target = in_before & ~((2U << sp) - 1);
    if (((spaces | bits('\t')) & in_target) != 0)
        return false;
    const std::string_view method{before.data(), sp};
    const std::string_view target{before.data() + sp + 1, before.size() - sp - 1};
    const Method known = method_of(method);  // a known method is a token
    if (target.size() > limits().max_uri || (known == Method::other && !is_token(method)) ||
        target.empty() || target.front() != '/')
        return false;
    const unsigned queries = bits('?') & in_target;
    set_request_line(known, method, target,
                     queries == 0 ? std::string_view::npos
                                 : static_cast<std::size_t>(std::countr_zero(queries)) - sp - 1,
                     1);
    return true;
}
#endif

/// The checks and the effect of a request line split at its spaces: a line on_start_line
/// and on_start_line_fast both split the same way gets the same answer from both.
[[gnu::always_inline]] inline Errc RequestParser::request_line(std::string_view method,
                                                             std::string_view target,
                                                             std::string_view version_text)
{
    if (target.size() > limits().max_uri)
        return Errc::uri_too_long;
    const int version = parse_version(version_text);
    const Method known = method_of(method);  // a known method is a token
    if ((known == Method::other && !is_token(method)) || version < 0)
        return Errc::bad_request;
    // Origin-form only: absolute-form is for proxies, asterisk-form for OPTIONS *.
    if (target.empty() || target.front() != '/' || !all_printable(target, 0x21, target_table))
        return Errc::bad_request;
    set_request_line(known, method, target, find_byte(target, '?'), version);
    return Errc::ok;
}

/// Stores an accepted request line; `q` is the position of the first '?' in `target` or npos.
[[gnu::always_inline]] inline void RequestParser::set_request_line(Method known,
                                                                   std::string_view method,
                                                                   std::string_view target,
                                                                   std::size_t q, int version)
{
    request_.method = known;
    request_.method_text = method;
    request_.target = target;
    // Views built from their parts, not substr: its out-of-line call (it may throw) keeps
    // `target` on the stack, stored as two words and reloaded as one (a store-forwarding stall
    // of about 2 % of a small request, perf).
    const std::size_t path_size = std::min(q, target.size());
    request_.path = {target.data(), path_size};
    const std::size_t query_at = q == std::string_view::npos ? target.size() : q + 1;
    request_.query = {target.data() + query_at, target.size() - query_at};
    request_.version_minor = version;
}

Errc RequestParser::on_head(const Head& head, Body& body)
{
    // RFC 9112 3.2: exactly one Host in 1.1, at most one in 1.0.
    if (head.hosts > 1 || (request_.version_minor == 1 && head.hosts == 0))
        return Errc::bad_request;
    // RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means the framing cannot be trusted.
    if (head.chunked && request_.version_minor == 0)
        return Errc::bad_request;
    request_.headers = headers();
    request_.fields = fields();
    request_.keep_alive =
        keep_alive(request_.version_minor, head.connection_close, head.connection_keep_alive);
    request_.expect_continue = request_.version_minor == 1 && head.expect_continue;
    if (head.chunked)
        body = Body::chunked;
    else if (head.content_length.value_or(0) > 0)
        body = Body::length;
    else
        body = Body::none;
    return Errc::ok;
}

void RequestParser::on_done(std::string_view body) { request_.body = body; }

void RequestParser::on_relocate(std::uintptr_t old_base, char* new_base) noexcept
{
    for (std::string_view* v : {&request_.method_text, &request_.target, &request_.path,
                                &request_.query, &request_.body})
        if (v->data() != nullptr)
            relocate(*v, old_base, new_base);
}

// ---------------------------------------------------------------------------------------------

ResponseParser::ResponseParser(Limits limits) noexcept
    : MessageParser(limits, Errc::header_too_large)
{
}

void ResponseParser::reset() noexcept
{
    restart();
    static constexpr Response empty{};  // see RequestParser::reset
    response_ = empty;
}

Errc ResponseParser::on_start_line(std::string_view line)
{
    // HTTP-version SP 3DIGIT SP reason-phrase; some servers omit the SP before an empty reason.
    const int version = parse_version(line.substr(0, 8));
    if (version < 0 || line.size() < 12 || line[8] != ' ')
        return Errc::bad_request;
    const std::string_view code = line.substr(9, 3);
    const auto status = parse_decimal(code);
    if (!status || *status < 100 || *status > 599)
        return Errc::bad_request;
    std::string_view reason = line.substr(12);
    if (!reason.empty()) {
        if (reason.front() != ' ' || !all_of(reason, field_table))
            return Errc::bad_request;
        reason.remove_prefix(1);
    }
    response_.status = static_cast<int>(*status);
    response_.reason = reason;
    response_.version_minor = version;
    return Errc::ok;
}

bool ResponseParser::on_start_line_fast(std::string_view line)
{
    return on_start_line(line) == Errc::ok;  // changes nothing unless it accepts
}

Errc ResponseParser::on_head(const Head& head, Body& body)
{
    const int status = response_.status;
    if (status == 101)
        return Errc::bad_request;  // we never ask to switch protocols
    if (status < 200) {
        body = Body::interim;
        return Errc::ok;
    }
    if (head.chunked && response_.version_minor == 0)
        return Errc::bad_request;
    response_.headers = headers();
    response_.fields = fields();
    response_.keep_alive =
        keep_alive(response_.version_minor, head.connection_close, head.connection_keep_alive);
    if (head_request_ || status == 204 || status == 304) {
        body = Body::none;
    } else if (head.chunked) {
        body = Body::chunked;
    } else if (head.content_length) {
        body = *head.content_length > 0 ? Body::length : Body::none;
    } else {
        response_.keep_alive = false;  // only the close can end the body
        body = Body::until_eof;
    }
    return Errc::ok;
}

void ResponseParser::on_done(std::string_view body) { response_.body = body; }

void ResponseParser::on_relocate(std::uintptr_t old_base, char* new_base) noexcept
{
    for (std::string_view* v : {&response_.reason, &response_.body})
        if (v->data() != nullptr)
            relocate(*v, old_base, new_base);
}

}  // namespace http
