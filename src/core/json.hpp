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
/// Parsing uses simdjson's on-demand API through one reused parser; not thread-safe: one
/// JsonCodec per thread or per connection. Views returned (`Metric::id`) point into memory
/// owned by this codec (or the input) and are valid until the next call on it.
/// Strictness: `id` and `type` required and strings; a gauge needs a finite `value` number
/// (no `delta`), a counter needs an integer `delta` (no `value`, no fraction or exponent).
/// Unknown extra fields are ignored (Go compatibility). Duplicate keys: malformed_json.
class JsonCodec {
public:
    JsonCodec();
    ~JsonCodec();
    JsonCodec(const JsonCodec&) = delete;
    JsonCodec& operator=(const JsonCodec&) = delete;

    /// One metric update (POST /update/).
    Result<Metric> parse_metric(std::string_view body);
    /// A value query {"id":"x","type":"gauge"} (POST /value/): only id and kind are set.
    Result<Metric> parse_query(std::string_view body);
    /// A JSON array of metric updates (POST /updates/, snapshot files). Clears `out` first.
    /// Empty array: Errc::empty_batch; more than `max_items`: Errc::batch_too_large.
    /// Any bad element fails the whole call.
    Result<void> parse_batch(std::string_view body, std::vector<Metric>& out, std::size_t max_items);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Appends one metric object: gauges with "value", counters with "delta".
/// Names are escaped as JSON strings.
void write_json(fmt::memory_buffer& out, const Metric& m);
/// Appends a JSON array of metrics.
void write_json(fmt::memory_buffer& out, std::span<const Metric> ms);
void write_json(fmt::memory_buffer& out, std::span<const OwnedMetric> ms);
/// Appends `s` as a JSON string literal, quotes included.
void write_json_string(fmt::memory_buffer& out, std::string_view s);

}  // namespace core
