#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace core {

/// The two text formats a scraper may ask for.
enum class ExpositionFormat : std::uint8_t {
    prometheus,   ///< text/plain; version=0.0.4
    openmetrics,  ///< application/openmetrics-text; version=1.0.0 (ends with `# EOF`)
};

/// The format a scraper's Accept header asks for: OpenMetrics when it weighs
/// `application/openmetrics-text` above 0 and above any text/plain, `text/*` or `*/*` it also
/// lists (Prometheus sends 1 against 0.5); else, ties included, the Prometheus text format.
ExpositionFormat negotiate_exposition(std::string_view accept) noexcept;
/// The Content-Type of `format`.
std::string_view exposition_content_type(ExpositionFormat format) noexcept;

/// One label of a sample: the value is escaped (`\\`, `\"`, `\n`) when written.
struct Label {
    std::string_view name;
    std::string_view value;
};

/// Writes metric families in either format: `# HELP` and `# TYPE` once per family before its
/// samples, values in full float64 precision (`NaN`, `+Inf`, `-Inf` where a value is one).
/// A counter family is named without `_total` in OpenMetrics' `# TYPE`/`# HELP` lines and its
/// samples carry `_total`; in the Prometheus format both carry it. Callers write each family's
/// samples together, as both formats require.
class Exposition {
public:
    Exposition(fmt::memory_buffer& out, ExpositionFormat format) noexcept : out_(out), format_(format) {}

    ExpositionFormat format() const noexcept { return format_; }
    fmt::memory_buffer& out() noexcept { return out_; }

    /// Starts a counter family; `name` ends with `_total` (its samples' name).
    void counter_family(std::string_view name, std::string_view help);
    void gauge_family(std::string_view name, std::string_view help);
    /// Starts a histogram family `name` (samples `name_bucket`, `name_sum`, `name_count`).
    void histogram_family(std::string_view name, std::string_view help);

    /// One sample `name{labels} value`.
    void sample(std::string_view name, std::initializer_list<Label> labels, double value);
    void sample(std::string_view name, std::initializer_list<Label> labels, std::int64_t value);
    void sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value)
    {
        sample(name, labels, static_cast<std::int64_t>(value));
    }
    /// A sample whose labels `head` were written by the caller (text between the braces,
    /// already escaped) followed by `labels`.
    void sample_with(std::string_view name, std::string_view head, std::initializer_list<Label> labels,
                     std::string_view value_text);

    /// OpenMetrics: `# EOF`; Prometheus: nothing. Call once, last.
    void finish();

    /// Appends `value` escaped as a label value (`\\`, `\"`, `\n`).
    static void escape_label(fmt::memory_buffer& out, std::string_view value);
    /// The text of a float64 sample value: shortest round-trip form, `NaN`, `+Inf`, `-Inf`.
    static void write_double(fmt::memory_buffer& out, double value);

private:
    void family(std::string_view name, std::string_view type, std::string_view help);
    void labels(std::string_view head, std::initializer_list<Label> labels);

    fmt::memory_buffer& out_;
    ExpositionFormat format_;
};

}  // namespace core
