#include "core/json.hpp"

#include "core/bytes.hpp"
#include "core/number.hpp"

#include <simdjson.h>

#include <array>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <utility>

namespace core {

namespace sj = simdjson;
namespace od = simdjson::ondemand;

namespace {

// Nesting allowed inside ignored fields; the metric fields themselves are flat.
constexpr int max_ignored_depth = 32;

// What one metric object said, collected in one pass because on-demand iteration is
// forward-only and the fields may come in any order ("type" after "value").
struct Fields {
    std::string_view id;
    std::string_view type;
    bool has_id = false;
    bool has_type = false;
    bool id_is_string = false;
    bool type_is_string = false;
    bool has_value = false;  // present and not null
    bool has_delta = false;
    bool value_null = false;
    bool delta_null = false;
    bool value_ok = false;  // a number that fits a double
    bool delta_ok = false;  // an integer literal that fits int64
    double value = 0;
    std::int64_t delta = 0;
};

// Consumes a value the codec does not use, checking it is well-formed JSON: on-demand would
// otherwise skip it unchecked.
Errc skip_checked(od::value& v, int depth) noexcept
{
    od::json_type t;
    if (v.type().get(t) != sj::SUCCESS)
        return Errc::malformed_json;
    switch (t) {
    case od::json_type::array: {
        od::array a;
        if (depth == 0 || v.get_array().get(a) != sj::SUCCESS)
            return Errc::malformed_json;
        for (auto element : a) {
            od::value e;
            if (element.get(e) != sj::SUCCESS)
                return Errc::malformed_json;
            if (Errc r = skip_checked(e, depth - 1); r != Errc::ok)
                return r;
        }
        return Errc::ok;
    }
    case od::json_type::object: {
        od::object o;
        if (depth == 0 || v.get_object().get(o) != sj::SUCCESS)
            return Errc::malformed_json;
        for (auto field : o) {
            od::field f;
            std::string_view key;
            if (std::move(field).get(f) != sj::SUCCESS || f.unescaped_key().get(key) != sj::SUCCESS)
                return Errc::malformed_json;
            if (Errc r = skip_checked(f.value(), depth - 1); r != Errc::ok)
                return r;
        }
        return Errc::ok;
    }
    case od::json_type::number: {
        od::number n;
        return v.get_number().get(n) == sj::SUCCESS ? Errc::ok : Errc::malformed_json;
    }
    case od::json_type::string: {
        std::string_view s;
        return v.get_string().get(s) == sj::SUCCESS ? Errc::ok : Errc::malformed_json;
    }
    case od::json_type::boolean: {
        bool b = false;
        return v.get_bool().get(b) == sj::SUCCESS ? Errc::ok : Errc::malformed_json;
    }
    case od::json_type::null: {
        bool is_null = false;
        return v.is_null().get(is_null) == sj::SUCCESS && is_null ? Errc::ok : Errc::malformed_json;
    }
    }
    return Errc::malformed_json;
}

// Reads a string field; a wrong JSON type is remembered (not an error of the JSON itself).
// Without escapes `out` views the codec's copy of the input (no copy made), else simdjson's
// string buffer. (Scalars, not an optional<string_view>: GCC copies that with one 16-byte load
// right after two 8-byte stores, a store-forwarding stall that cost a tenth of a batch.)
Errc read_string(od::value& v, std::string_view& out, bool& is_string) noexcept
{
    const std::string_view token = v.raw_json_token();
    if (token.empty() || token.front() != '"')
        return skip_checked(v, max_ignored_depth);
    is_string = true;
    // The token runs from the opening quote to the next token (trailing spaces included); with
    // no backslash, the first quote after the opening one closes the string. One inline scan
    // (names are short: two memchr calls cost more).
    const std::size_t close = bytes::find_first(
        token, 1, [](std::uint64_t w) { return bytes::equal_to(w, '"') | bytes::equal_to(w, '\\'); },
        [](unsigned char c) { return c == '"' || c == '\\'; });
    if (close == token.size() || token[close] != '"')
        return v.get_string().get(out) == sj::SUCCESS ? Errc::ok : Errc::malformed_json;
    od::raw_json_string consumed;
    if (v.get_raw_json_string().get(consumed) != sj::SUCCESS)
        return Errc::malformed_json;
    out = std::string_view{token.data() + 1, close - 1};
    return Errc::ok;
}

// simdjson 3.0.1 (Debian 12) misreads some numbers of more than 19 significant digits: its
// mantissa wraps and the overflow check misses it when the integer part is 0, so
// 0.95000000000000000000 reads as 0.0277 (simdjson issue #2093, fixed in 3.6.3). A number token
// long enough to hold 20 digits is therefore read again with std::from_chars, which rounds
// correctly; simdjson has already checked its grammar and range.
bool read_double(od::value& v, double& out) noexcept
{
    const std::string_view token = v.raw_json_token();
    if (v.get_double().get(out) != sj::SUCCESS)
        return false;
    if (token.size() > 20) {
        double exact = 0;
        if (std::from_chars(token.data(), token.data() + token.size(), exact).ec == std::errc{})
            out = exact;
    }
    return true;
}

enum class Key { id, type, value, delta, other };

Key classify(std::string_view key) noexcept
{
    // Length first, then fixed-size compares: inlined, where string_view's == calls memcmp.
    const auto is = [key]<std::size_t N>(const char (&name)[N]) { return std::memcmp(key.data(), name, N - 1) == 0; };
    switch (key.size()) {
    case 2:
        return is("id") ? Key::id : Key::other;
    case 4:
        return is("type") ? Key::type : Key::other;
    case 5:
        return is("value") ? Key::value : is("delta") ? Key::delta : Key::other;
    default:
        return Key::other;
    }
}

// Compares the key's bytes as they stand in the document (the input is padded, so reading a few
// bytes past a short key is safe): only a key that matches none of the four names is unescaped
// (it may be an escaped spelling of one, and must be well-formed). Fixed-size compares inline.
Errc key_of(od::field& field, Key& out) noexcept
{
    const char* raw = field.key().raw();
    const auto is = [raw]<std::size_t N>(const char (&quoted)[N]) { return std::memcmp(raw, quoted, N - 1) == 0; };
    if (is("id\""))
        out = Key::id;
    else if (is("type\""))
        out = Key::type;
    else if (is("value\""))
        out = Key::value;
    else if (is("delta\""))
        out = Key::delta;
    else {
        std::string_view key;
        if (field.unescaped_key().get(key) != sj::SUCCESS)
            return Errc::malformed_json;
        out = classify(key);
    }
    return Errc::ok;
}

Errc read_fields(od::object object, Fields& f) noexcept
{
    for (auto field_result : object) {
        // References, not copies: GCC copies a just-built iterator with one wide load that
        // cannot be forwarded from the narrower stores (a stall worth a third of the parse).
        if (field_result.error() != sj::SUCCESS)
            return Errc::malformed_json;
        od::field&& field = std::move(field_result).value_unsafe();
        Key key = Key::other;
        if (key_of(field, key) != Errc::ok)
            return Errc::malformed_json;
        od::value& v = field.value();
        Errc r = Errc::ok;
        if (key == Key::id) {
            if (f.has_id)
                return Errc::malformed_json;
            f.has_id = true;
            r = read_string(v, f.id, f.id_is_string);
        } else if (key == Key::type) {
            if (f.has_type)
                return Errc::malformed_json;
            f.has_type = true;
            r = read_string(v, f.type, f.type_is_string);
        } else if (key == Key::value || key == Key::delta) {
            const bool is_value = key == Key::value;
            bool& present = is_value ? f.has_value : f.has_delta;
            bool& null = is_value ? f.value_null : f.delta_null;
            if (present || null)
                return Errc::malformed_json;
            od::json_type t;
            if (v.type().get(t) != sj::SUCCESS)
                return Errc::malformed_json;
            null = t == od::json_type::null;
            present = !null;
            // A number simdjson refuses (out of double or int64 range, a fraction in "delta")
            // is a bad value, not bad JSON; the parse leaves the token for the loop to skip.
            if (t == od::json_type::number && is_value)
                f.value_ok = read_double(v, f.value);
            else if (t == od::json_type::number)
                f.delta_ok = v.get_int64().get(f.delta) == sj::SUCCESS;
            else
                r = skip_checked(v, max_ignored_depth);
        } else {
            r = skip_checked(v, max_ignored_depth);
        }
        if (r != Errc::ok)
            return r;
    }
    return Errc::ok;
}

// Turns collected fields into a metric; `query` ignores value and delta (POST /value/).
Result<Metric> to_metric(const Fields& f, bool query) noexcept
{
    if (!f.has_id || !f.has_type)
        return Errc::missing_field;
    if (!f.type_is_string)
        return Errc::bad_kind;
    Result<Kind> kind = parse_kind(f.type);
    if (!kind)
        return kind.error();
    if (!f.id_is_string || !valid_utf8_name(f.id))
        return Errc::bad_name;
    Metric m{f.id, *kind, 0, 0};
    if (query)
        return m;
    // The other kind's field must be absent; null counts as absent because Go clients with
    // pointer fields and no omitempty send it.
    if (m.kind == Kind::gauge) {
        if (f.has_delta)
            return Errc::bad_value;
        if (!f.has_value && !f.value_null)
            return Errc::missing_field;
        if (!f.value_ok)
            return Errc::bad_value;
        // simdjson refuses literals beyond the double range, so this cannot fail; kept as the
        // model's own rule rather than an assumption about the parser.
        if (!std::isfinite(f.value))
            return Errc::non_finite;
        m.value = f.value;
    } else {
        if (f.has_value)
            return Errc::bad_value;
        if (!f.has_delta && !f.delta_null)
            return Errc::missing_field;
        if (!f.delta_ok)
            return Errc::bad_value;
        m.delta = f.delta;
    }
    return m;
}

// Nothing but whitespace may follow the top-level value.
bool at_end(od::document& doc) noexcept
{
    const char* location = nullptr;
    return doc.current_location().get(location) == sj::OUT_OF_BOUNDS;
}

// The scalar fast path. For a 50-byte metric simdjson's fixed cost per document (stage 1 over
// padded 64-byte blocks, the iterator's set-up) is most of the parse, so the common shape is read
// here byte by byte first: one object (or an array of them for batches), JSON whitespace, keys
// and string values without escapes, control characters or non-ASCII bytes (so no UTF-8 to
// validate), `null`, and numbers in exactly the JSON grammar. It fills the same Fields as
// read_fields, and to_metric decides as before. It never decides an error: anything else
// (escapes, duplicates, nesting, true/false, numbers it cannot convert exactly as simdjson does,
// trailing bytes, truncation) makes it return false, and the simdjson path reads the same input
// and decides. Views point into the input: no copy, no padding (it never reads past the end).
class ScalarReader {
public:
    explicit ScalarReader(std::string_view s) noexcept : p_(s.data()), end_(s.data() + s.size()) {}

    // One object: by its exact form if it has it, else by the member loop.
    bool any_object(Fields& f) noexcept
    {
        const char* const start = p_;
        if (canonical(f))
            return true;
        p_ = start;
        f = Fields{};  // only when the form did not match, so no stall on the common path
        return object(f);
    }

    // The exact form our agent and Go clients send, {"id":"…","type":"gauge","value":…} or
    // {"id":"…","type":"counter","delta":…}: fixed-size compares instead of the member loop.
    // False means "not this form" (`f` and the position are then partly used).
    bool canonical(Fields& f) noexcept
    {
        if (!literal(R"({"id":")") || !plain_string(f.id))
            return false;
        f.has_id = f.id_is_string = true;
        const char* const members = p_;
        constexpr std::size_t type_at = sizeof R"(,"type":")" - 1;  // the kind's name, once matched
        if (literal(R"(,"type":"gauge","value":)")) {
            f.type = {members + type_at, 5};
            f.has_type = f.type_is_string = f.has_value = true;
            f.value_ok = double_literal(f.value);
            if (!f.value_ok)
                return false;
        } else if (literal(R"(,"type":"counter","delta":)")) {
            f.type = {members + type_at, 7};
            f.has_type = f.type_is_string = f.has_delta = true;
            f.delta_ok = int64_literal(f.delta);
            if (!f.delta_ok)
                return false;
        } else {
            return false;
        }
        return p_ != end_ && *p_++ == '}';
    }

    // One object, whitespace before it skipped.
    bool object(Fields& f) noexcept
    {
        if (!consume('{'))
            return false;
        skip_whitespace();
        if (p_ != end_ && *p_ == '}') {
            ++p_;
            return true;
        }
        do {
            std::string_view key;
            if (!consume('"') || !plain_string(key) || !consume(':'))
                return false;
            skip_whitespace();
            if (!member(classify(key), f))
                return false;
        } while (consume(','));
        return consume('}');
    }

    // Skips whitespace, then takes `c` if it comes next.
    bool consume(char c) noexcept
    {
        skip_whitespace();
        if (p_ == end_ || *p_ != c)
            return false;
        ++p_;
        return true;
    }

    // Nothing but whitespace is left.
    bool at_end() noexcept
    {
        skip_whitespace();
        return p_ == end_;
    }

private:
    // The most significant digits taken in a number: 19 fit a uint64 exactly. Longer ones go to
    // the simdjson path (which reads them again with std::from_chars: see read_double).
    static constexpr int max_significant_digits = 19;
    // The most exponent digits taken: simdjson refuses 20 or more.
    static constexpr int max_exponent_digits = 3;
    // Exact doubles: 2^53 and the powers of ten up to 10^22.
    static constexpr std::uint64_t max_exact_integer = std::uint64_t{1} << 53;
    static constexpr std::array<double, 23> exact_powers_of_ten = [] {
        std::array<double, 23> powers{};
        double power = 1;
        for (double& p : powers) {
            p = power;
            power *= 10;
        }
        return powers;
    }();

    static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

    void skip_whitespace() noexcept
    {
        // One compare in the common case (no whitespace): the four are all at or below ' '.
        while (p_ != end_ && static_cast<unsigned char>(*p_) <= ' ' &&
               (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t'))
            ++p_;
    }

    // One member's value, its key already read; the rules follow read_fields. A duplicate of a
    // known key is simdjson's to report.
    bool member(Key key, Fields& f) noexcept
    {
        switch (key) {
        case Key::id:
            return text_member(f.has_id, f.id, f.id_is_string);
        case Key::type:
            return text_member(f.has_type, f.type, f.type_is_string);
        case Key::value:
            if (f.has_value || f.value_null)
                return false;
            if (null()) {
                f.value_null = true;
                return true;
            }
            f.has_value = true;
            f.value_ok = double_literal(f.value);
            return f.value_ok;
        case Key::delta:
            if (f.has_delta || f.delta_null)
                return false;
            if (null()) {
                f.delta_null = true;
                return true;
            }
            f.has_delta = true;
            f.delta_ok = int64_literal(f.delta);
            return f.delta_ok;
        case Key::other:
            break;
        }
        std::string_view ignored;
        bool is_string = false;
        return string_or_null(ignored, is_string);
    }

    bool text_member(bool& seen, std::string_view& out, bool& is_string) noexcept
    {
        if (seen)
            return false;
        seen = true;
        return string_or_null(out, is_string);
    }

    // A string (`is_string` set) or null (left unset).
    bool string_or_null(std::string_view& out, bool& is_string) noexcept
    {
        if (null())
            return true;
        is_string = consume('"') && plain_string(out);
        return is_string;
    }

    // Takes `text` if the input continues with it.
    template <std::size_t N>
    bool literal(const char (&text)[N]) noexcept
    {
        if (end_ - p_ < static_cast<std::ptrdiff_t>(N - 1) || std::memcmp(p_, text, N - 1) != 0)
            return false;
        p_ += N - 1;
        return true;
    }

    bool null() noexcept { return literal("null"); }

    // The rest of a string whose opening quote is taken, up to and including its closing quote.
    bool plain_string(std::string_view& out) noexcept
    {
        const std::string_view rest{p_, static_cast<std::size_t>(end_ - p_)};
        const std::size_t close = bytes::find_first(
            rest, 0,
            [](std::uint64_t w) {
                return bytes::equal_to(w, '"') | bytes::equal_to(w, '\\') | bytes::below(w, 0x20) | bytes::non_ascii(w);
            },
            [](unsigned char c) { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80; });
        if (close == rest.size() || rest[close] != '"')
            return false;
        out = rest.substr(0, close);
        p_ += close + 1;
        return true;
    }

    // Digits while they come, appended to `mantissa`; `significant` counts those from the first
    // non-zero one (the mantissa wraps past 19 of them: the caller checks the count).
    void digit_run(std::uint64_t& mantissa, int& significant) noexcept
    {
        for (; p_ != end_ && is_digit(*p_); ++p_) {
            const auto digit = static_cast<unsigned>(*p_ - '0');
            mantissa = mantissa * 10 + digit;
            significant += significant != 0 || digit != 0 ? 1 : 0;
        }
    }

    // An optional '-' and the integer part: "0" or a digit run not starting with 0 ("01" is two
    // tokens to the caller, which then fails on the second).
    bool integer_part(bool& negative, std::uint64_t& mantissa, int& significant) noexcept
    {
        negative = p_ != end_ && *p_ == '-';
        p_ += negative ? 1 : 0;
        if (p_ == end_ || !is_digit(*p_))
            return false;
        if (*p_ == '0')
            ++p_;
        else
            digit_run(mantissa, significant);
        return true;
    }

    bool double_literal(double& out) noexcept
    {
        const char* const start = p_;
        bool negative = false;
        std::uint64_t mantissa = 0;
        int significant = 0;
        if (!integer_part(negative, mantissa, significant))
            return false;
        std::ptrdiff_t exponent = 0;
        if (p_ != end_ && *p_ == '.') {
            const char* const fraction = ++p_;
            digit_run(mantissa, significant);
            if (p_ == fraction)
                return false;  // "1.": no fraction digit
            exponent = fraction - p_;
        }
        if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
            ++p_;
            const bool exponent_negative = p_ != end_ && *p_ == '-';
            p_ += p_ != end_ && (*p_ == '-' || *p_ == '+') ? 1 : 0;
            std::uint64_t written = 0;
            const char* const digits = p_;
            int ignored = 0;
            digit_run(written, ignored);
            if (p_ == digits || p_ - digits > max_exponent_digits)
                return false;
            exponent += exponent_negative ? -static_cast<std::ptrdiff_t>(written) : static_cast<std::ptrdiff_t>(written);
        }
        if (significant > max_significant_digits)
            return false;
        // Clinger's fast path, as simdjson's own: an exact integer times or divided by an exact
        // power of ten, one correctly rounded operation.
        if (mantissa <= max_exact_integer && exponent >= -22 && exponent <= 22) {
            double v = static_cast<double>(mantissa);
            const double power = exact_powers_of_ten[static_cast<std::size_t>(exponent < 0 ? -exponent : exponent)];
            v = exponent < 0 ? v / power : v * power;
            out = negative ? -v : v;
            return true;
        }
        // Correctly rounded like simdjson; out of range (overflow, or underflow to zero, which
        // libstdc++ reports) is left to simdjson.
        const auto [end, ec] = std::from_chars(start, p_, out);
        return ec == std::errc{} && end == p_;
    }

    // An integer literal within int64; a fraction or an exponent ("1.0", "1e3") is left to
    // simdjson, which calls it a bad value.
    bool int64_literal(std::int64_t& out) noexcept
    {
        const char* const start = p_;
        bool negative = false;
        std::uint64_t magnitude = 0;
        int significant = 0;
        if (!integer_part(negative, magnitude, significant))
            return false;
        if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E'))
            return false;
        if (significant <= std::numeric_limits<std::int64_t>::digits10) {  // 18 digits cannot overflow
            const auto v = static_cast<std::int64_t>(magnitude);
            out = negative ? -v : v;
            return true;
        }
        const auto [end, ec] = std::from_chars(start, p_, out);
        return ec == std::errc{} && end == p_;
    }

    const char* p_;
    const char* const end_;
};

// A batch as the fast path reads it: true when it took every element and each is a valid metric
// (`out` then holds them), false to leave the whole body to simdjson: an element's error is only
// the answer once the rest of the document is known to be valid JSON.
bool read_batch(std::string_view body, std::vector<Metric>& out, std::size_t max_items)
{
    ScalarReader reader{body};
    if (!reader.consume('['))
        return false;
    do {
        Fields f;
        if (out.size() == max_items || !reader.any_object(f))
            return false;
        const Result<Metric> m = to_metric(f, false);
        if (!m)
            return false;
        out.push_back(*m);
    } while (reader.consume(','));
    return reader.consume(']') && reader.at_end();
}

}  // namespace

struct JsonCodec::Impl {
    bool fast_path = true;
    od::parser parser;
    // simdjson reads up to SIMDJSON_PADDING bytes past the input, so every body is copied
    // here; it only grows, so steady-state parses do not allocate.
    std::unique_ptr<char[]> buffer;
    std::size_t capacity = 0;

    Result<od::document> iterate(std::string_view body) noexcept
    {
        if (capacity < body.size() + sj::SIMDJSON_PADDING) {
            const std::size_t grown = std::max(body.size() + sj::SIMDJSON_PADDING, 2 * capacity);
            buffer.reset(new (std::nothrow) char[grown]());
            if (!buffer) {
                capacity = 0;
                return Errc::body_too_large;
            }
            capacity = grown;
        }
        if (!body.empty())
            std::memcpy(buffer.get(), body.data(), body.size());
        // The bytes after the body are another request's: simdjson may look at them, and the
        // outcome must depend on this body alone (the padding only needs to be there).
        std::memset(buffer.get() + body.size(), 0, sj::SIMDJSON_PADDING);
        od::document doc;
        if (parser.iterate(sj::padded_string_view(buffer.get(), body.size(), capacity)).get(doc) != sj::SUCCESS)
            return Errc::malformed_json;
        return doc;
    }

    Result<Metric> parse_one(std::string_view body, bool query) noexcept
    {
        if (fast_path) {
            Fields f;
            if (ScalarReader reader{body}; reader.any_object(f) && reader.at_end())
                return to_metric(f, query);
        }
        Result<od::document> doc = iterate(body);
        if (!doc)
            return doc.error();
        od::object object;
        if (doc->get_object().get(object) != sj::SUCCESS)
            return Errc::malformed_json;
        Fields f;
        if (Errc r = read_fields(object, f); r != Errc::ok)
            return r;
        if (!at_end(*doc))
            return Errc::malformed_json;
        return to_metric(f, query);
    }
};

JsonCodec::JsonCodec(Parsers parsers) : impl_(std::make_unique<Impl>())
{
    impl_->fast_path = parsers == Parsers::fast_then_simdjson;
}
JsonCodec::~JsonCodec() = default;

Result<Metric> JsonCodec::parse_metric(std::string_view body) { return impl_->parse_one(body, false); }

std::size_t JsonCodec::sized_for() const noexcept { return std::max(impl_->capacity, impl_->parser.capacity()); }

Result<Metric> JsonCodec::parse_query(std::string_view body) { return impl_->parse_one(body, true); }

Result<void> JsonCodec::parse_batch(std::string_view body, std::vector<Metric>& out, std::size_t max_items)
{
    out.clear();
    if (impl_->fast_path && read_batch(body, out, max_items))
        return {};
    out.clear();
    Result<od::document> doc = impl_->iterate(body);
    if (!doc)
        return doc.error();
    od::array array;
    if (doc->get_array().get(array) != sj::SUCCESS)
        return Errc::malformed_json;
    for (auto element : array) {
        od::object object;
        if (element.get_object().get(object) != sj::SUCCESS)
            return Errc::malformed_json;
        if (out.size() == max_items)
            return Errc::batch_too_large;
        Fields f;
        if (Errc r = read_fields(object, f); r != Errc::ok)
            return r;
        Result<Metric> m = to_metric(f, false);
        if (!m)
            return m.error();
        out.push_back(*m);
    }
    if (!at_end(*doc))
        return Errc::malformed_json;
    if (out.empty())
        return Errc::empty_batch;
    return {};
}

namespace {

// Length of the valid UTF-8 sequence at the start of `s`, or 0 (RFC 3629: no overlongs,
// no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence(std::string_view s) noexcept
{
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    auto cont = [&](std::size_t i) { return i < s.size() && (byte(i) & 0xc0) == 0x80; };
    const unsigned char b = byte(0);
    if (b < 0x80)
        return 1;
    if (b >= 0xc2 && b <= 0xdf)
        return cont(1) ? 2 : 0;
    if (b >= 0xe0 && b <= 0xef) {
        if (!cont(1) || !cont(2))
            return 0;
        if ((b == 0xe0 && byte(1) < 0xa0) || (b == 0xed && byte(1) > 0x9f))
            return 0;
        return 3;
    }
    if (b >= 0xf0 && b <= 0xf4) {
        if (!cont(1) || !cont(2) || !cont(3))
            return 0;
        if ((b == 0xf0 && byte(1) < 0x90) || (b == 0xf4 && byte(1) > 0x8f))
            return 0;
        return 4;
    }
    return 0;
}

// Bytes that write_json_string cannot copy as they are: controls, '"', '\\', and non-ASCII
// (checked as UTF-8). The tail's test; words are checked eight bytes at a time.
constexpr auto needs_care = [] {
    std::array<bool, 256> t{};
    for (std::size_t c = 0; c < t.size(); ++c)
        t[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
    return t;
}();

}  // namespace

namespace {

// Escaping turns one input byte into at most 6 output bytes (\u00XX).
constexpr std::size_t max_escaped_bytes(std::size_t n) noexcept { return 2 + 6 * n; }

template <std::size_t N>
char* put(char* p, const char (&literal)[N]) noexcept
{
    std::memcpy(p, literal, N - 1);  // a fixed size: inlined, no call per piece
    return p + N - 1;
}

// Bytes of `w` that put_string cannot copy as they are (see needs_care).
std::uint64_t care(std::uint64_t w) noexcept
{
    return bytes::below(w, 0x20) | bytes::equal_to(w, '"') | bytes::equal_to(w, '\\') | bytes::non_ascii(w);
}

// Writes `s` as a JSON string literal at `p` (room for max_escaped_bytes); returns the end.
char* put_string(char* p, std::string_view s) noexcept
{
    static constexpr char hex[] = "0123456789abcdef";
    *p++ = '"';
    if (s.size() >= 4 && s.size() <= 16 && bytes::none_short(s, care)) {  // most metric names
        bytes::copy_short(p, s.data(), s.size());
        p += s.size();
        *p++ = '"';
        return p;
    }
    std::size_t run = 0;  // start of the bytes not yet copied
    std::size_t i = 0;
    const auto copy_run = [&] {
        std::memcpy(p, s.data() + run, i - run);
        p += i - run;
    };
    const auto byte_care = [](unsigned char c) { return needs_care[c]; };
    for (;;) {
        i = bytes::find_first(s, i, care, byte_care);
        if (i == s.size())
            break;
        const unsigned char c = static_cast<unsigned char>(s[i]);
        const std::size_t n = c < 0x80 ? 1 : utf8_sequence(s.substr(i));
        if (n > 1) {
            i += n;
            continue;
        }
        copy_run();
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = static_cast<char>(c);
        } else if (c < 0x20) {
            p = put(p, "\\u00");
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        } else {
            // Not UTF-8 (a name from a URL path may hold any byte): JSON cannot carry it, so
            // it becomes U+FFFD rather than an invalid document.
            p = put(p, "\xef\xbf\xbd");
        }
        run = ++i;
    }
    copy_run();
    *p++ = '"';
    return p;
}

// Grows `out` by up to `room` bytes, lets `write` fill them, keeps what it wrote: one capacity
// check per metric instead of one per piece.
template <class Write>
void append_bounded(fmt::memory_buffer& out, std::size_t room, Write write)
{
    const std::size_t before = out.size();
    out.resize(before + room);
    char* const end = write(out.data() + before);
    out.resize(static_cast<std::size_t>(end - out.data()));
}

}  // namespace

void write_json_string(fmt::memory_buffer& out, std::string_view s)
{
    append_bounded(out, max_escaped_bytes(s.size()), [&](char* p) { return put_string(p, s); });
}

void write_json(fmt::memory_buffer& out, const Metric& m)
{
    constexpr std::size_t fixed = sizeof R"({"id":,"type":"counter","delta":})";
    append_bounded(out, fixed + max_escaped_bytes(m.id.size()) + max_number_chars, [&](char* p) {
        p = put(p, R"({"id":)");
        p = put_string(p, m.id);
        if (m.kind == Kind::gauge) {
            assert(std::isfinite(m.value));
            p = put(p, R"(,"type":"gauge","value":)");
            p = format_json_double(p, m.value);
        } else {
            p = put(p, R"(,"type":"counter","delta":)");
            p = format_counter(p, m.delta);
        }
        *p++ = '}';
        return p;
    });
}

void write_json(fmt::memory_buffer& out, std::span<const Metric> ms)
{
    out.push_back('[');
    for (std::size_t i = 0; i < ms.size(); ++i) {
        if (i != 0)
            out.push_back(',');
        write_json(out, ms[i]);
    }
    out.push_back(']');
}

void write_json(fmt::memory_buffer& out, std::span<const OwnedMetric> ms)
{
    out.push_back('[');
    for (std::size_t i = 0; i < ms.size(); ++i) {
        if (i != 0)
            out.push_back(',');
        write_json(out, ms[i].view());
    }
    out.push_back(']');
}

void write_json_listing(fmt::memory_buffer& out, std::span<const OwnedMetric> ms)
{
    constexpr char at[] = R"(,"updated_at":)";
    out.push_back('[');
    for (std::size_t i = 0; i < ms.size(); ++i) {
        if (i != 0)
            out.push_back(',');
        write_json(out, ms[i].view());
        out.resize(out.size() - 1);  // the closing brace: "updated_at" goes inside the object
        append_bounded(out, sizeof at + max_number_chars + 1, [&](char* p) {
            p = put(p, at);
            p = format_counter(p, ms[i].updated_at);
            *p++ = '}';
            return p;
        });
    }
    out.push_back(']');
}

}  // namespace core
