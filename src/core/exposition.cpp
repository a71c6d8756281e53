#include "core/exposition.hpp"

#include <cmath>
#include <iterator>

namespace core {
namespace {

std::string_view trim(std::string_view s) noexcept
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
        if (lower(a[i]) != lower(b[i]))
            return false;
    }
    return true;
}

/// The q-weight of one media range's parameters ("version=1.0.0;q=0.5"): 1 when absent, 0 when
/// malformed (RFC 9110: a weight is 0 to 1 with at most three decimals).
double weight(std::string_view params) noexcept
{
    while (!params.empty()) {
        const auto semi = params.find(';');
        const std::string_view param = trim(params.substr(0, semi));
        params = semi == std::string_view::npos ? std::string_view{} : params.substr(semi + 1);
        if (param.size() < 2 || (param[0] != 'q' && param[0] != 'Q') || param[1] != '=')
            continue;
        const std::string_view v = param.substr(2);
        if (v.empty() || v.size() > 5 || (v[0] != '0' && v[0] != '1'))
            return 0;
        double q = v[0] - '0';
        if (v.size() > 1) {
            if (v[1] != '.')
                return 0;
            double scale = 0.1;
            for (char c : v.substr(2)) {
                if (c < '0' || c > '9')
                    return 0;
                q += (c - '0') * scale;
                scale /= 10;
            }
        }
        return q > 1 ? 0 : q;
    }
    return 1;
}

}  // namespace

ExpositionFormat negotiate_exposition(std::string_view accept) noexcept
{
    double openmetrics = 0;
    double plain = 0;
    while (!accept.empty()) {
        const auto comma = accept.find(',');
        const std::string_view range = accept.substr(0, comma);
        accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
        const auto semi = range.find(';');
        const std::string_view type = trim(range.substr(0, semi));
        const double q = weight(semi == std::string_view::npos ? std::string_view{} : range.substr(semi + 1));
        if (iequals(type, "application/openmetrics-text"))
            openmetrics = std::max(openmetrics, q);
        else if (iequals(type, "text/plain") || iequals(type, "text/*") || type == "*/*")
            plain = std::max(plain, q);
    }
    return openmetrics > 0 && openmetrics > plain ? ExpositionFormat::openmetrics : ExpositionFormat::prometheus;
}

std::string_view exposition_content_type(ExpositionFormat format) noexcept
{
    return format == ExpositionFormat::openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                                   : "text/plain; version=0.0.4; charset=utf-8";
}

void Exposition::escape_label(fmt::memory_buffer& out, std::string_view value)
{
    for (char c : value) {
        switch (c) {
        case '\\': out.append(std::string_view{"\\\\"}); break;
        case '"': out.append(std::string_view{"\\\""}); break;
        case '\n': out.append(std::string_view{"\\n"}); break;
        default: out.push_back(c);
        }
    }
}

void Exposition::write_double(fmt::memory_buffer& out, double value)
{
    if (std::isnan(value))
        out.append(std::string_view{"NaN"});
    else if (std::isinf(value))
        out.append(value > 0 ? std::string_view{"+Inf"} : std::string_view{"-Inf"});
    else
        fmt::format_to(std::back_inserter(out), "{}", value);  // shortest form that round-trips
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help)
{
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void Exposition::counter_family(std::string_view name, std::string_view help)
{
    constexpr std::string_view total = "_total";
    if (format_ == ExpositionFormat::openmetrics && name.ends_with(total))
        name.remove_suffix(total.size());
    family(name, "counter", help);
}

void Exposition::gauge_family(std::string_view name, std::string_view help) { family(name, "gauge", help); }

void Exposition::histogram_family(std::string_view name, std::string_view help)
{
    family(name, "histogram", help);
}

void Exposition::labels(std::string_view head, std::initializer_list<Label> labels)
{
    if (head.empty() && labels.size() == 0)
        return;
    out_.push_back('{');
    out_.append(head);
    bool first = head.empty();
    for (const Label& l : labels) {
        if (!first)
            out_.push_back(',');
        first = false;
        out_.append(l.name);
        out_.append(std::string_view{"=\""});
        escape_label(out_, l.value);
        out_.push_back('"');
    }
    out_.push_back('}');
}

void Exposition::sample(std::string_view name, std::initializer_list<Label> labels, double value)
{
    out_.append(name);
    this->labels({}, labels);
    out_.push_back(' ');
    write_double(out_, value);
    out_.push_back('\n');
}

void Exposition::sample(std::string_view name, std::initializer_list<Label> labels, std::int64_t value)
{
    out_.append(name);
    this->labels({}, labels);
    fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void Exposition::sample_with(std::string_view name, std::string_view head, std::initializer_list<Label> labels,
                             std::string_view value_text)
{
    out_.append(name);
    this->labels(head, labels);
    out_.push_back(' ');
    out_.append(value_text);
    out_.push_back('\n');
}

void Exposition::finish()
{
    if (format_ == ExpositionFormat::openmetrics)
        out_.append(std::string_view{"# EOF\n"});
}

}  // namespace core
