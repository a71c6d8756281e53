#include "server/router.hpp"

#include "core/json.hpp"
#include "core/number.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

namespace server {
namespace {

using core::Errc;
using http::Method;

bool is_get(const Exchange& ex) noexcept
{
    return ex.request.method == Method::get || ex.request.method == Method::head;
}

void method_not_allowed(Exchange& ex, std::string_view allow)
{
    ex.response.fail(405, "method not allowed");
    ex.response.add_header("Allow", allow);
}

/// Splits "a/b/c" at the first '/': returns "a" and leaves "b/c" in `rest` (empty when none).
std::string_view next_segment(std::string_view& rest) noexcept
{
    const auto slash = rest.find('/');
    std::string_view segment = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    return segment;
}

int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/// Percent-decodes a path segment into `scratch` (only when it has escapes, so the common
/// case is a view into the request). A malformed escape: Errc::bad_name.
core::Result<std::string_view> decode_segment(std::string_view s, std::string& scratch)
{
    if (s.find('%') == std::string_view::npos)
        return s;
    scratch.clear();
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            scratch.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size())
            return Errc::bad_name;
        const int hi = hex_value(s[i + 1]);
        const int lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0)
            return Errc::bad_name;
        scratch.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return std::string_view{scratch};
}

/// The text form of a metric's value for /value/{kind}/{name}.
void write_value_text(fmt::memory_buffer& out, const core::Metric& m)
{
    std::array<char, core::max_number_chars> buf;
    char* end = m.kind == core::Kind::gauge ? core::format_gauge(buf.data(), m.value)
                                             : core::format_counter(buf.data(), m.delta);
    out.append(buf.data(), end);
}

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

/// What the JSON handlers need besides the request: a parser and the batch vectors.
struct JsonScratch {
    core::JsonCodec codec;
    std::vector<core::Metric> batch;   ///< parsed /updates/ elements
    std::vector<core::Metric> stored;  ///< their stored results
};

/// Lends a JsonScratch for one request from a small per-thread pool. Not one per connection:
/// a parser keeps buffers of about six times the largest body it has seen, and 64 connections'
/// worth evicted each other from the cache (a /updates/ of 1000 took 2.5x its in-process time).
/// Shared ones stay hot; a handler that suspends (PostgreSQL) holds its own until it ends.
class JsonLease {
public:
    JsonLease()
    {
        auto& free = pool();
        if (free.empty()) {
            scratch_ = std::make_unique<JsonScratch>();
        } else {
            scratch_ = std::move(free.back());
            free.pop_back();
        }
    }
    ~JsonLease()
    {
        // Maybe on another thread than the one that lent it (a resumed coroutine): that
        // thread's pool takes it.
        if (auto& free = pool(); free.size() < max_pooled)
            free.push_back(std::move(scratch_));
    }
    JsonLease(const JsonLease&) = delete;
    JsonLease& operator=(const JsonLease&) = delete;

    JsonScratch* operator->() const noexcept { return scratch_.get(); }

private:
    static constexpr std::size_t max_pooled = 16;

    // Not inlined: a coroutine may resume on another thread, and an inlined thread_local
    // address could be reused from before the suspension.
    [[gnu::noinline]] static std::vector<std::unique_ptr<JsonScratch>>& pool()
    {
        thread_local std::vector<std::unique_ptr<JsonScratch>> free;
        return free;
    }

    std::unique_ptr<JsonScratch> scratch_;
};

}  // namespace

core::awaitable<void> Router::operator()(Exchange& ex) const
{
    const std::string_view path = ex.request.path;
    const Method method = ex.request.method;

    if (path == "/update/" || path == "/value/" || path == "/updates/") {
        if (method != Method::post) {
            method_not_allowed(ex, "POST");
            co_return;
        }
        if (path == "/update/")
            co_await update_json(ex);
        else if (path == "/value/")
            co_await value_json(ex);
        else
            co_await update_batch(ex);
        co_return;
    }
    if (path.starts_with("/update/")) {
        if (method != Method::post)
            method_not_allowed(ex, "POST");
        else
            co_await update_url(ex, path.substr(8));
        co_return;
    }
    if (path == "/" || path == "/ping" || path == "/metrics" || path.starts_with("/value/")) {
        if (!is_get(ex)) {
            method_not_allowed(ex, "GET, HEAD");
            co_return;
        }
        if (path == "/")
            co_await listing(ex, content_type::html, write_index_html);
        else if (path == "/ping")
            co_await ping(ex);
        else if (path == "/metrics")
            co_await listing(ex, content_type::prometheus, write_prometheus);
        else
            co_await value_url(ex, path.substr(7));
        co_return;
    }
    ex.response.fail(404, "not found");
}

core::awaitable<void> Router::update_url(Exchange& ex, std::string_view rest) const
{
    // /update/{kind}/{name}/{value}: a missing part is an unknown route (404), as in the Go server.
    const std::string_view kind_text = next_segment(rest);
    const std::string_view raw_name = next_segment(rest);
    const std::string_view value_text = next_segment(rest);
    if (raw_name.empty() || value_text.empty() || !rest.empty()) {
        ex.response.fail(404, raw_name.empty() ? "missing metric name" : "not found");
        co_return;
    }
    auto kind = core::parse_kind(kind_text);
    if (!kind) {
        ex.response.fail(kind.error());
        co_return;
    }
    auto name = decode_segment(raw_name, ex.scratch.path_segment);
    if (!name || !core::valid_name(*name)) {
        ex.response.fail(Errc::bad_name);
        co_return;
    }
    core::Metric update{*name, *kind, 0, 0};
    if (*kind == core::Kind::gauge) {
        auto v = core::parse_gauge(value_text);
        if (!v) {
            ex.response.fail(v.error());
            co_return;
        }
        update.value = *v;
    } else {
        auto d = core::parse_counter(value_text);
        if (!d) {
            ex.response.fail(d.error());
            co_return;
        }
        update.delta = *d;
    }
    // A statement, not `x ? y : co_await z`: GCC 12 miscompiles co_await in conditions.
    auto stored = storage_.apply_now(update);
    if (!stored)
        stored = co_await storage_.apply(update);
    if (!*stored) {
        ex.response.fail(stored->error());
        co_return;
    }
    ex.response.text("OK");
}

core::awaitable<void> Router::value_url(Exchange& ex, std::string_view rest) const
{
    const std::string_view kind_text = next_segment(rest);
    const std::string_view raw_name = next_segment(rest);
    auto kind = core::parse_kind(kind_text);
    auto name = decode_segment(raw_name, ex.scratch.path_segment);
    if (!kind || !name || raw_name.empty() || !rest.empty()) {
        ex.response.fail(404, "metric not found");
        co_return;
    }
    auto metric = storage_.get_now(*kind, *name);
    if (!metric)
        metric = co_await storage_.get(*kind, *name);
    if (!*metric) {
        ex.response.fail(metric->error());
        co_return;
    }
    ex.response.status = 200;
    ex.response.type = content_type::text;
    ex.response.body.clear();
    write_value_text(ex.response.body, **metric);
}

core::awaitable<void> Router::update_json(Exchange& ex) const
{
    const JsonLease json;
    auto update = json->codec.parse_metric(ex.body);
    if (!update) {
        ex.response.fail(update.error());
        co_return;
    }
    auto metric = storage_.apply_now(*update);
    if (!metric)
        metric = co_await storage_.apply(*update);
    if (!*metric) {
        ex.response.fail(metric->error());
        co_return;
    }
    ex.response.json([&](fmt::memory_buffer& out) { core::write_json(out, **metric); });
}

core::awaitable<void> Router::value_json(Exchange& ex) const
{
    const JsonLease json;
    auto query = json->codec.parse_query(ex.body);
    if (!query) {
        ex.response.fail(query.error());
        co_return;
    }
    auto metric = storage_.get_now(query->kind, query->id);
    if (!metric)
        metric = co_await storage_.get(query->kind, query->id);
    if (!*metric) {
        ex.response.fail(metric->error());
        co_return;
    }
    ex.response.json([&](fmt::memory_buffer& out) { core::write_json(out, **metric); });
}

core::awaitable<void> Router::update_batch(Exchange& ex) const
{
    const JsonLease json;
    auto& batch = json->batch;
    auto& stored = json->stored;
    core::Result<void> r = json->codec.parse_batch(ex.body, batch, limits_.max_batch);
    if (r)
        r = co_await storage_.apply_batch(batch, stored);
    if (!r) {
        ex.response.fail(r.error());
        co_return;
    }
    ex.response.json([&](fmt::memory_buffer& out) { core::write_json(out, std::span<const core::Metric>{stored}); });
}

core::awaitable<void> Router::listing(Exchange& ex, std::string_view type, ListingWriter write) const
{
    auto all = co_await storage_.list();
    if (!all) {
        ex.response.fail(all.error());
        co_return;
    }
    ex.response.status = 200;
    ex.response.type = type;
    ex.response.body.clear();
    write(ex.response.body, *all);
}

core::awaitable<void> Router::ping(Exchange& ex) const
{
    // Not `if (co_await ...)`: GCC 12 miscompiles a co_await in an if condition (ud2).
    const bool healthy = co_await storage_.ping();
    if (healthy)
        ex.response.text("OK");
    else
        ex.response.fail(500, "storage unavailable");
}

void write_index_html(fmt::memory_buffer& out, std::span<const core::OwnedMetric> metrics)
{
    out.append(std::string_view{
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Metrics</title></head>\n"
        "<body>\n<h1>Metrics</h1>\n<table>\n<tr><th>Name</th><th>Type</th><th>Value</th></tr>\n"});
    for (const auto& m : metrics) {
        out.append(std::string_view{"<tr><td>"});
        escape_html(out, m.id);
        out.append(std::string_view{"</td><td>"});
        out.append(core::to_string(m.kind));
        out.append(std::string_view{"</td><td>"});
        write_value_text(out, m.view());
        out.append(std::string_view{"</td></tr>\n"});
    }
    out.append(std::string_view{"</table>\n</body>\n</html>\n"});
}

namespace {

/// [a-zA-Z_:][a-zA-Z0-9_:]*: other bytes become '_', a leading digit gets a '_' prefix.
std::string prometheus_name(std::string_view id, core::Kind kind)
{
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
        name.append("_total");
    return name;
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
    // Families are sorted by their sanitised name so that each family is contiguous. A sample
    // whose name changed in sanitising carries its true id as the label `id`, so distinct
    // metrics never collapse into one series. A gauge `x_total` and a counter `x` would share a
    // family: the counter then moves to the family `x_total_counter`.
    struct Sample {
        std::string family;
        const core::OwnedMetric* metric;
    };
    std::vector<Sample> samples;
    samples.reserve(metrics.size());
    for (const auto& m : metrics)
        samples.push_back({prometheus_name(m.id, m.kind), &m});
    std::stable_sort(samples.begin(), samples.end(), [](const Sample& a, const Sample& b) {
        return a.family != b.family ? a.family < b.family : a.metric->kind < b.metric->kind;
    });
    auto it = std::back_inserter(out);
    std::string family;  // the current family's sanitised name, before any rename
    core::Kind first_kind = core::Kind::gauge;
    core::Kind typed_kind = core::Kind::gauge;
    for (auto& s : samples) {
        const auto& m = *s.metric;
        if (s.family != family) {
            family = s.family;
            first_kind = typed_kind = m.kind;
            fmt::format_to(it, "# TYPE {} {}\n", s.family, core::to_string(m.kind));
        } else if (m.kind != first_kind) {
            s.family.append("_counter");
            if (typed_kind != m.kind) {
                typed_kind = m.kind;
                fmt::format_to(it, "# TYPE {} {}\n", s.family, core::to_string(m.kind));
            }
        }
        out.append(s.family);
        const std::string_view name = s.family;
        const bool plain = m.kind == core::Kind::gauge
                               ? name == m.id
                               : name.size() == m.id.size() + 6 && name.starts_with(m.id) && name.ends_with("_total");
        if (!plain) {
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
