#pragma once

// The text forms of answers: a value as text, the HTML page of `/`, the Prometheus exposition.

#include "core/metric.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <span>

namespace server {

/// The text form of a metric's value (/value/{kind}/{name}, the page): the shortest
/// round-tripping decimal of a gauge, a counter's total.
void write_value_text(fmt::memory_buffer& out, const core::Metric& m);

/// The HTML5 page of `/`: one table row per metric, names escaped, with the age of its last
/// update at `now` (Unix milliseconds) and the update time itself in a <time> element.
void write_index_html(fmt::memory_buffer& out, std::span<const core::OwnedMetric> metrics, std::int64_t now);

/// "12s ago", "5m ago", "3h ago", "2d ago": an age in milliseconds, rounded down (a negative
/// one, from a clock that stepped back, is 0s).
void write_age(fmt::memory_buffer& out, std::int64_t age_ms);

/// Prometheus text exposition 0.0.4 of `metrics` (sorted by id): one family per sanitised
/// name ([a-zA-Z_:][a-zA-Z0-9_:]*), counters with the suffix `_total`, gauges never ending in
/// it (`_gauge` is appended), so no family holds both kinds; a sample whose family is not
/// named after its id carries the id as the label `id`.
void write_prometheus(fmt::memory_buffer& out, std::span<const core::OwnedMetric> metrics);

}  // namespace server
