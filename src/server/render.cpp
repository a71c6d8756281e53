#include "server/render.hpp"

#include "core/number.hpp"

#include <algorithm>
#include <array>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace server {

void escape_html(fmt::memory_buffer& out, std::string_view s)
{
    for (char c : s) {
        switch (c) {
        case '&': out.append(std::string_view{"&amp;"}); break;
        case '<': out.append(std::string_view{"&lt;"}); break;
        case '>': out.append(std::string_view{"&gt;"}); break;
        case '"': out.append(std::string_view{"&quot;"}); break;
        case '\'': out.append(std::string_view{"&#39;"}); break;
        default: out.push_back(c);
        }
    }
}

void write_utc(fmt::memory_buffer& out, std::int64_t ms)
{
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    ::gmtime_r(&seconds, &tm);
    fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

void write_value_text(fmt::memory_buffer& out, const core::Metric& m)
{
    std::array<char, core::max_number_chars> buf;
    char* end = m.kind == core::Kind::gauge ? core::format_gauge(buf.data(), m.value)
                                             : core::format_counter(buf.data(), m.delta);
    out.append(buf.data(), end);
}

void write_age(fmt::memory_buffer& out, std::int64_t age_ms)
{
    const std::int64_t s = std::max<std::int64_t>(age_ms, 0) / 1000;
    auto it = std::back_inserter(out);
    if (s < 120)
        fmt::format_to(it, "{}s ago", s);
    else if (s < 120 * 60)
        fmt::format_to(it, "{}m ago", s / 60);
    else if (s < 48 * 3600)
        fmt::format_to(it, "{}h ago", s / 3600);
    else
        fmt::format_to(it, "{}d ago", s / 86400);
}

namespace {

/// The family of a metric: its id sanitised to [a-zA-Z_:][a-zA-Z0-9_:]* (other bytes become
/// '_', a leading digit gets a '_' prefix), counters with the suffix `_total`. No gauge family
/// ends in `_total` (one that would gets `_value` appended), so a gauge and a counter never
/// share a family, whatever names clients choose: each family has one TYPE.
std::string prometheus_family(std::string_view id, core::Kind kind)
{
    constexpr std::string_view total = "_total";
    std::string name;
    name.reserve(id.size() + 7);
    if (!id.empty() && id.front() >= '0' && id.front() <= '9')
        name.push_back('_');
    for (char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == ':';
        name.push_back(ok ? c : '_');
    }
    // The daemon's own families (self_metrics.hpp) are not for clients to shadow.
    if (name.starts_with("metrics_server_") || name.starts_with("process_"))
        name.insert(0, "user_");
    if (kind == core::Kind::counter)
        name.append(total);
    else if (name.ends_with(total))
        name.append("_value");
    return name;
}

/// OpenMetrics names a counter family without `_total`, so a gauge family named like a
/// counter's base ("x" beside the counter "x_total") would be a second family "x": such a gauge
/// family gets `_value` appended, again while the new name is still a counter's base (its
/// samples then carry their id as a label).
template <class Sample>
void rename_gauges_shadowing_counters(std::vector<Sample>& samples)
{
    constexpr std::string_view total = "_total";
    std::vector<std::string_view> bases;  // views of counter families, which are not renamed
    for (const auto& s : samples)
        if (s.metric->kind == core::Kind::counter)
            bases.push_back(std::string_view{s.family}.substr(0, s.family.size() - total.size()));
    std::sort(bases.begin(), bases.end());
    for (auto& s : samples)
        if (s.metric->kind == core::Kind::gauge)
            while (std::binary_search(bases.begin(), bases.end(), std::string_view{s.family}))
                s.family.append("_value");
}

/// Whether the sample of `m` in `family` needs no `id` label: the family is named after the
/// id itself (no other id of the family can be, so the series stay distinct).
bool names_itself(std::string_view family, const core::OwnedMetric& m) noexcept
{
    if (m.kind == core::Kind::gauge)
        return family == m.id;
    return family.size() == m.id.size() + 6 && family.starts_with(m.id) && family.ends_with("_total");
}

}  // namespace

void write_prometheus(core::Exposition& out, std::span<const core::OwnedMetric> metrics)
{
    const bool openmetrics = out.format() == core::ExpositionFormat::openmetrics;
    // Sorted by family so that each family's samples follow its one TYPE line.
    struct Sample {
        std::string family;
        const core::OwnedMetric* metric;
    };
    std::vector<Sample> samples;
    samples.reserve(metrics.size());
    for (const auto& m : metrics)
        samples.push_back({prometheus_family(m.id, m.kind), &m});
    if (openmetrics)
        rename_gauges_shadowing_counters(samples);
    std::stable_sort(samples.begin(), samples.end(),
                     [](const Sample& a, const Sample& b) { return a.family < b.family; });
    const std::string* family = nullptr;
    fmt::memory_buffer label;
    for (const auto& s : samples) {
        const auto& m = *s.metric;
        if (family == nullptr || s.family != *family) {
            family = &s.family;
            if (m.kind == core::Kind::counter)
                out.counter_family(s.family, "A counter stored by metrics-server.");
            else
                out.gauge_family(s.family, "A gauge stored by metrics-server.");
        }
        label.clear();
        if (!names_itself(s.family, m)) {
            label.append(std::string_view{"id=\""});
            core::Exposition::escape_label(label, m.id);
            label.push_back('"');
        }
        std::array<char, core::max_number_chars> buf;
        char* end = m.kind == core::Kind::gauge ? core::format_json_double(buf.data(), m.value)
                                                 : core::format_counter(buf.data(), m.delta);
        out.sample_with(s.family, {label.data(), label.size()}, {}, {buf.data(), static_cast<std::size_t>(end - buf.data())});
    }
}

}  // namespace server
