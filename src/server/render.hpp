#pragma once

// The text forms of answers: a value as text, ages and times, the Prometheus exposition of the
// stored metrics (the page of `/` is in page.hpp).

#include "core/exposition.hpp"
#include "core/metric.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <span>

namespace server {

/// The text form of a metric's value (/value/{kind}/{name}, the page): the shortest
/// round-tripping decimal of a gauge, a counter's total.
void write_value_text(fmt::memory_buffer& out, const core::Metric& m);

/// `s` with &, <, >, " and ' as character references: safe as HTML text and attribute values.
void escape_html(fmt::memory_buffer& out, std::string_view s);

/// Unix milliseconds as RFC 3339 UTC with milliseconds ("2026-12-06T06:30:00.123Z").
void write_utc(fmt::memory_buffer& out, std::int64_t ms);

/// "12s ago", "5m ago", "3h ago", "2d ago": an age in milliseconds, rounded down (a negative
/// one, from a clock that stepped back, is 0s).
void write_age(fmt::memory_buffer& out, std::int64_t age_ms);

/// The stored metrics (sorted by id) in `out`'s format: one family per sanitised name
/// ([a-zA-Z_:][a-zA-Z0-9_:]*), counters with the suffix `_total`, gauges never ending in it
/// (`_value` is appended), so no family holds both kinds; names that would start like the
/// daemon's own families (`metrics_server_`, `process_`) get the prefix `user_`; in OpenMetrics
/// a gauge family named like a counter family's base also gets `_value`. A sample whose family
/// is not named after its id carries the id as the label `id`. Each family has HELP and TYPE.
void write_prometheus(core::Exposition& out, std::span<const core::OwnedMetric> metrics);

}  // namespace server
