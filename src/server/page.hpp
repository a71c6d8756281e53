#pragma once

#include "core/metric.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <span>
#include <string_view>

namespace server {

/// The HTML5 page of `/`, one file with nothing external (works offline).
///
/// Without JavaScript it is a table of every metric, sorted by name: kind, value, and the time
/// of the last update as an age ("3s ago") in a <time> element (names escaped). With JavaScript the same table becomes live: it refreshes
/// from `GET /values/` every few seconds without reloading, sorts by any column, filters by a
/// substring of the name, shows counters' rates and a sparkline per metric drawn from the values
/// seen while the page is open (no history on the server), and renders only the rows in view so
/// that 10,000 metrics stay fluid. Names only ever reach the document as text (`textContent`),
/// never as markup.
void write_page(fmt::memory_buffer& out, std::span<const core::OwnedMetric> metrics, std::int64_t now_ms);

/// The page's stylesheet and script, as served inline (exposed for tests).
extern const std::string_view page_style;
extern const std::string_view page_script;

}  // namespace server
