#pragma once

#include "core/metric.hpp"
#include "core/result.hpp"

#include <fmt/format.h>

#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace core {

/// The wire form of metrics, compatible with the Go server:
///   {"id":"x","type":"gauge","value":1.5}   {"id":"c","type":"counter","delta":3}
/// Parsing tries a strict scalar reader for the common shape first (flat objects, strings
/// without escapes or non-ASCII bytes, numbers and null) and otherwise uses simdjson's on-demand
/// API through one reused parser; both give the same answer for every input. Not thread-safe:
/// one JsonCodec per thread or per connection. Views returned (`Metric::id`) point into the
/// input or into memory owned by this codec: valid while the input lives, until the next call
/// on this codec.
/// Strictness, checked in this order:
///  - malformed_json: not JSON (also invalid UTF-8, lone surrogates), top level not an object
///    (an array of objects for batches), anything but whitespace after it, a duplicate
///    `id`/`type`/`value`/`delta` key (escapes decoded first), ignored fields nested deeper than 32;
///  - missing_field: no `id` or no `type` (for updates also no `value`/`delta` of the kind);
///  - bad_kind: `type` not the string "gauge" or "counter";
///  - bad_name: `id` not a string, or not `valid_name` after unescaping;
///  - bad_value: a gauge `value` that is not a number (null, string, ...) or beyond the double
///    range (1e400; so non_finite never comes from JSON), a counter `delta` that is not an
///    integer literal (1.5, 1e3, 1.0) or outside int64, or the other kind's field present.
///    The other kind's field set to null counts as absent (Go clients with pointer fields).
/// Unknown extra fields are ignored (Go compatibility) but must be well-formed. Doubles
/// round-trip bit-exactly. Steady state (buffers grown to the largest body seen) allocates
/// nothing; the simdjson path copies the body into a padded buffer owned by the codec.
class JsonCodec {
public:
    /// Which parsers read a document. `simdjson_only` is for tests and fuzz targets, which
    /// check that the fast path answers exactly as simdjson alone does.
    enum class Parsers { fast_then_simdjson, simdjson_only };

    explicit JsonCodec(Parsers parsers = Parsers::fast_then_simdjson);
    ~JsonCodec();
    JsonCodec(const JsonCodec&) = delete;
    JsonCodec& operator=(const JsonCodec&) = delete;

    /// One metric update (POST /update/).
    Result<Metric> parse_metric(std::string_view body);
    /// A value query {"id":"x","type":"gauge"} (POST /value/): only id and kind are set;
    /// `value`/`delta`, if present, are ignored whatever they hold.
    Result<Metric> parse_query(std::string_view body);
    /// A JSON array of metric updates (POST /updates/, snapshot files). Clears `out` first.
    /// Empty array: Errc::empty_batch; more than `max_items`: Errc::batch_too_large.
    /// Any bad element fails the whole call (first error wins; `out` is then unspecified).
    /// The ids in `out` live as long as those of parse_metric (see above).
    Result<void> parse_batch(std::string_view body, std::vector<Metric>& out, std::size_t max_items);

    /// The largest body the codec's buffers are sized for (they hold several times this):
    /// what an owner that pools codecs checks before keeping one.
    std::size_t sized_for() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Appends one metric object: gauges with "value", counters with "delta".
/// Names are escaped as JSON strings. Precondition: gauges are finite.
void write_json(fmt::memory_buffer& out, const Metric& m);
/// Appends a JSON array of metrics.
void write_json(fmt::memory_buffer& out, std::span<const Metric> ms);
void write_json(fmt::memory_buffer& out, std::span<const OwnedMetric> ms);
/// Appends the listing of GET /values/: a JSON array of metrics, each with "updated_at" (Unix
/// milliseconds) after its value: {"id":"x","type":"gauge","value":1.5,"updated_at":1765000000000}
void write_json_listing(fmt::memory_buffer& out, std::span<const OwnedMetric> ms);
/// Appends `s` as a JSON string literal, quotes included: `"` and `\` escaped, control
/// characters as \u00XX, bytes that are not valid UTF-8 replaced by U+FFFD.
void write_json_string(fmt::memory_buffer& out, std::string_view s);

}  // namespace core
