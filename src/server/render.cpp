#include "server/render.hpp"

#include "core/number.hpp"

#include <algorithm>
#include <array>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace server {
namespace {

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

/// Unix milliseconds as RFC 3339 UTC with milliseconds ("2026-12-06T06:30:00.123Z").
void write_utc(fmt::memory_buffer& out, std::int64_t ms)
{
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    ::gmtime_r(&seconds, &tm);
    fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

}  // namespace

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

void write_index_html(fmt::memory_buffer& out, std::span<const core::OwnedMetric> metrics, std::int64_t now)
{
    out.append(std::string_view{
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Metrics</title></head>\n"
        "<body>\n<h1>Metrics</h1>\n<table>\n<tr><th>Name</th><th>Type</th><th>Value</th><th>Updated</th></tr>\n"});
    for (const auto& m : metrics) {
        out.append(std::string_view{"<tr><td>"});
        escape_html(out, m.id);
        out.append(std::string_view{"</td><td>"});
        out.append(core::to_string(m.kind));
        out.append(std::string_view{"</td><td>"});
        write_value_text(out, m.view());
        out.append(std::string_view{"</td><td>"});
        if (m.updated_at > 0) {  // 0: unknown
            out.append(std::string_view{"<time datetime=\""});
            write_utc(out, m.updated_at);
            out.append(std::string_view{"\">"});
            write_age(out, now - m.updated_at);
            out.append(std::string_view{"</time>"});
        }
        out.append(std::string_view{"</td></tr>\n"});
    }
    out.append(std::string_view{"</table>\n</body>\n</html>\n"});
}

namespace {

/// The family of a metric: its id sanitised to [a-zA-Z_:][a-zA-Z0-9_:]* (other bytes become
/// '_', a leading digit gets a '_' prefix), counters with the suffix `_total`. No gauge family
/// ends in `_total` (one that would gets `_gauge` appended), so a gauge and a counter never
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
    if (kind == core::Kind::counter)
        name.append(total);
    else if (name.ends_with(total))
        name.append("_gauge");
    return name;
}

/// Whether the sample of `m` in `family` needs no `id` label: the family is named after the
/// id itself (no other id of the family can be, so the series stay distinct).
bool names_itself(std::string_view family, const core::OwnedMetric& m) noexcept
{
    if (m.kind == core::Kind::gauge)
        return family == m.id;
    return family.size() == m.id.size() + 6 && family.starts_with(m.id) && family.ends_with("_total");
}

void escape_label(fmt::memory_buffer& out, std::string_view s)
{
    for (char c : s) {
        if (c == '\\' || c == '"')
            out.push_back('\\');
        if (c == '\n') {
            out.append(std::string_view{"\\n"});
            continue;
        }
        out.push_back(c);
    }
}

}  // namespace

void write_prometheus(fmt::memory_buffer& out, std::span<const core::OwnedMetric> metrics)
{
    // Sorted by family so that each family's samples follow its one TYPE line.
    struct Sample {
        std::string family;
        const core::OwnedMetric* metric;
    };
    std::vector<Sample> samples;
    samples.reserve(metrics.size());
    for (const auto& m : metrics)
        samples.push_back({prometheus_family(m.id, m.kind), &m});
    std::stable_sort(samples.begin(), samples.end(),
                     [](const Sample& a, const Sample& b) { return a.family < b.family; });
    auto it = std::back_inserter(out);
    const std::string* family = nullptr;
    for (const auto& s : samples) {
        const auto& m = *s.metric;
        if (family == nullptr || s.family != *family) {
            family = &s.family;
            fmt::format_to(it, "# TYPE {} {}\n", s.family, core::to_string(m.kind));
        }
        out.append(s.family);
        if (!names_itself(s.family, m)) {
            out.append(std::string_view{"{id=\""});
            escape_label(out, m.id);
            out.append(std::string_view{"\"}"});
        }
        out.push_back(' ');
        std::array<char, core::max_number_chars> buf;
        char* end = m.kind == core::Kind::gauge ? core::format_json_double(buf.data(), m.value)
                                                 : core::format_counter(buf.data(), m.delta);
        out.append(buf.data(), end);
        out.push_back('\n');
    }
}

}  // namespace server
