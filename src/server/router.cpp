#include "server/router.hpp"

#include "core/bytes.hpp"
#include "core/json.hpp"
#include "core/number.hpp"
#include "server/audit.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <stdexcept>
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

}  // namespace

/// What the JSON handlers need besides the request: a parser and the batch vectors.
struct JsonScratch {
    core::JsonCodec codec;
    std::vector<core::Metric> batch;   ///< parsed /updates/ elements
    std::vector<core::Metric> stored;  ///< their stored results

    /// Whether a pool may keep it: one grown by a large body is dropped instead, so that the
    /// pools' memory has a fixed bound (pooled count times this size, per thread).
    bool small() const noexcept
    {
        constexpr std::size_t max_body = 256 * 1024;
        constexpr std::size_t max_items = max_body / 32;  // elements of that many bytes
        return codec.sized_for() <= max_body && batch.capacity() <= max_items && stored.capacity() <= max_items;
    }
};

/// Lends a JsonScratch for one request from a small per-thread pool, on first use (URL routes
/// need none). Not one per connection: a parser keeps buffers of about six times the largest
/// body it has seen, and 64 connections' worth evicted each other from the cache (a /updates/
/// of 1000 took 2.5x its in-process time). Shared ones stay hot; a handler that suspends
/// (PostgreSQL) holds its own until it ends.
class JsonLease {
public:
    JsonLease() = default;
    ~JsonLease()
    {
        if (scratch_)  // URL routes lease none: no pool lookup for them
            give_back();
    }
    JsonLease(const JsonLease&) = delete;
    JsonLease& operator=(const JsonLease&) = delete;

    JsonScratch& operator*() { return *operator->(); }
    JsonScratch* operator->()
    {
        if (!scratch_) {
            if (auto& free = pool(); free.empty()) {
                scratch_ = std::make_unique<JsonScratch>();
            } else {
                scratch_ = std::move(free.back());
                free.pop_back();
            }
        }
        return scratch_.get();
    }

private:
    static constexpr std::size_t max_pooled = 16;

    void give_back() noexcept
    {
        // Maybe on another thread than the one that lent it (a resumed coroutine): that
        // thread's pool takes it.
        if (auto& free = pool(); free.size() < max_pooled && scratch_->small())
            free.push_back(std::move(scratch_));
    }

    // Not inlined: a coroutine may resume on another thread, and an inlined thread_local
    // address could be reused from before the suspension.
    [[gnu::noinline]] static std::vector<std::unique_ptr<JsonScratch>>& pool()
    {
        thread_local std::vector<std::unique_ptr<JsonScratch>> free;
        return free;
    }

    std::unique_ptr<JsonScratch> scratch_;
};

namespace {

/// What a path asks for, before the method is checked.
enum class Endpoint : std::uint8_t {
    index, ping, metrics, update_json, value_json, update_batch, update_url, value_url, unknown
};

/// Whether `s` starts with the literal `prefix`, inline: string_view's == and starts_with are
/// memcmp calls (13 of them in the old chain of ifs, 3 % of a request), and GCC 12 calls
/// memcmp for 7 or 9 fixed bytes too.
template <std::size_t N>
bool has_prefix(std::string_view s, const char (&prefix)[N]) noexcept
{
    static_assert(N - 1 <= 16);
    return s.size() >= N - 1 && core::bytes::equal_short(s.data(), prefix, N - 1);
}

template <std::size_t N>
bool is(std::string_view s, const char (&literal)[N]) noexcept
{
    return s.size() == N - 1 && has_prefix(s, literal);
}

Endpoint endpoint_of(std::string_view path) noexcept
{
    if (is(path, "/update/"))
        return Endpoint::update_json;
    if (is(path, "/updates/"))
        return Endpoint::update_batch;
    if (is(path, "/value/"))
        return Endpoint::value_json;
    if (has_prefix(path, "/update/"))
        return Endpoint::update_url;
    if (has_prefix(path, "/value/"))
        return Endpoint::value_url;
    if (is(path, "/"))
        return Endpoint::index;
    if (is(path, "/ping"))
        return Endpoint::ping;
    if (is(path, "/metrics"))
        return Endpoint::metrics;
    return Endpoint::unknown;
}

/// The routes that list the whole store or ask for its health: always awaited.
bool waits_for_storage(std::string_view path) noexcept
{
    const Endpoint e = endpoint_of(path);
    return e == Endpoint::index || e == Endpoint::ping || e == Endpoint::metrics;
}

}  // namespace

/// A request checked and reduced to the one storage call it needs: the router's work before
/// and after that call is plain code, shared by the coroutine and the plain path.
struct Router::Call {
    enum class Op : std::uint8_t { none, apply, get, apply_batch, list, ping };
    /// How a metric that apply or get returns is answered.
    enum class Reply : std::uint8_t { ok_text, value_text, json };

    Op op = Op::none;  ///< none: already answered (an error)
    Reply reply = Reply::json;
    core::Metric metric{};  ///< apply: the update; get: kind and id
    std::string_view type;  ///< list: the content type
    ListingWriter write = nullptr;

    static Call store(Op op, const core::Metric& m, Reply reply)
    {
        Call c;
        c.op = op;
        // Member by member, the id as two words: `m` is often in a Result that the JSON codec
        // has just written through the stack with 8-byte stores, and GCC 12 copies a Metric
        // or a string_view with 16-byte loads, which cannot be forwarded from them (a
        // store-forwarding stall of about 2 % of a JSON update, perf).
        c.metric.id = {m.id.data(), core::bytes::opaque(m.id.size())};
        c.metric.kind = m.kind;
        c.metric.value = m.value;
        c.metric.delta = m.delta;
        c.reply = reply;
        return c;
    }
    static Call only(Op op)
    {
        Call c;
        c.op = op;
        return c;
    }
    static Call listing(std::string_view type, ListingWriter write)
    {
        Call c = only(Op::list);
        c.type = type;
        c.write = write;
        return c;
    }
};

core::awaitable<void> Router::operator()(Exchange& ex) const
{
    JsonLease json;
    const Call call = route(ex, json);
    switch (call.op) {
    case Call::Op::none:
        break;
    case Call::Op::apply: {
        // Statements, not `x ? y : co_await z`: GCC 12 miscompiles co_await in conditions.
        auto r = storage_.apply_now(call.metric);
        if (!r)
            r = co_await storage_.apply(call.metric);
        reply(ex, call, *r);
        break;
    }
    case Call::Op::get: {
        auto r = storage_.get_now(call.metric.kind, call.metric.id);
        if (!r)
            r = co_await storage_.get(call.metric.kind, call.metric.id);
        reply(ex, call, *r);
        break;
    }
    case Call::Op::apply_batch: {
        auto r = storage_.apply_batch_now(json->batch, json->stored);
        if (!r)
            r = co_await storage_.apply_batch(json->batch, json->stored);
        reply_batch(ex, json->stored, *r);
        break;
    }
    case Call::Op::list: {
        auto all = co_await storage_.list();
        if (!all) {
            ex.response.fail(all.error());
            break;
        }
        ex.response.status = 200;
        ex.response.type = call.type;
        ex.response.body.clear();
        call.write(ex.response.body, *all);
        break;
    }
    case Call::Op::ping: {
        // Not `if (co_await ...)`: GCC 12 miscompiles a co_await in an if condition (ud2).
        const bool healthy = co_await storage_.ping();
        if (healthy)
            ex.response.text("OK");
        else
            ex.response.fail(500, "storage unavailable");
        break;
    }
    }
}

bool Router::answers_now(const http::Request& request) const
{
    return storage_.answers_now() && !waits_for_storage(request.path);
}

void Router::answer_now(Exchange& ex) const
{
    JsonLease json;
    const Call call = route(ex, json);
    // .value(): the storage promised (answers_now) to answer at once; a broken promise is a
    // bad_optional_access, which GuardExceptions answers with a 500.
    switch (call.op) {
    case Call::Op::none:
        return;
    case Call::Op::apply:
        return reply(ex, call, storage_.apply_now(call.metric).value());
    case Call::Op::get:
        return reply(ex, call, storage_.get_now(call.metric.kind, call.metric.id).value());
    case Call::Op::apply_batch: {
        // Stored first, viewed after: argument evaluation order is unspecified (clang goes left
        // to right and would view the vector before apply_batch_now resizes it).
        const core::Result<void> r = storage_.apply_batch_now(json->batch, json->stored).value();
        return reply_batch(ex, json->stored, r);
    }
    case Call::Op::list:
    case Call::Op::ping:
        break;
    }
    throw std::logic_error("answer_now: a route that waits for the storage");
}

Router::Call Router::route(Exchange& ex, JsonLease& json) const
{
    const std::string_view path = ex.request.path;
    const Endpoint endpoint = endpoint_of(path);
    switch (endpoint) {
    case Endpoint::update_json:
    case Endpoint::value_json:
    case Endpoint::update_batch:
    case Endpoint::update_url:
        if (ex.request.method != Method::post) {
            method_not_allowed(ex, "POST");
            return {};
        }
        break;
    case Endpoint::index:
    case Endpoint::ping:
    case Endpoint::metrics:
    case Endpoint::value_url:
        if (!is_get(ex)) {
            method_not_allowed(ex, "GET, HEAD");
            return {};
        }
        break;
    case Endpoint::unknown:
        break;
    }
    switch (endpoint) {
    case Endpoint::update_json:
        return update_json(ex, json->codec);
    case Endpoint::value_json:
        return value_json(ex, json->codec);
    case Endpoint::update_batch:
        return update_batch(ex, *json);
    case Endpoint::update_url:
        return update_url(ex, path.substr(8));
    case Endpoint::index:
        return Call::listing(content_type::html, write_index_html);
    case Endpoint::ping:
        return Call::only(Call::Op::ping);
    case Endpoint::metrics:
        return Call::listing(content_type::prometheus, write_prometheus);
    case Endpoint::value_url:
        return value_url(ex, path.substr(7));
    case Endpoint::unknown:
        break;
    }
    ex.response.fail(404, "not found");
    return {};
}

Router::Call Router::update_url(Exchange& ex, std::string_view rest) const
{
    // /update/{kind}/{name}/{value}: a missing or extra part is an unknown route (404), as in
    // the Go server; a slash after the value is an extra (empty) part.
    const bool extra_slash = rest.ends_with('/');
    const std::string_view kind_text = next_segment(rest);
    const std::string_view raw_name = next_segment(rest);
    const std::string_view value_text = next_segment(rest);
    if (raw_name.empty() || value_text.empty() || !rest.empty() || extra_slash) {
        ex.response.fail(404, raw_name.empty() ? "missing metric name" : "not found");
        return {};
    }
    auto kind = core::parse_kind(kind_text);
    if (!kind) {
        ex.response.fail(kind.error());
        return {};
    }
    auto name = decode_segment(raw_name, ex.scratch.path_segment);
    if (!name || !core::valid_name(*name)) {
        ex.response.fail(Errc::bad_name);
        return {};
    }
    core::Metric update{*name, *kind, 0, 0};
    if (*kind == core::Kind::gauge) {
        auto v = core::parse_gauge(value_text);
        if (!v) {
            ex.response.fail(v.error());
            return {};
        }
        update.value = *v;
    } else {
        auto d = core::parse_counter(value_text);
        if (!d) {
            ex.response.fail(d.error());
            return {};
        }
        update.delta = *d;
    }
    return Call::store(Call::Op::apply, update, Call::Reply::ok_text);
}

Router::Call Router::value_url(Exchange& ex, std::string_view rest) const
{
    const bool extra_slash = rest.ends_with('/');  // an extra (empty) part, as in update_url
    const std::string_view kind_text = next_segment(rest);
    const std::string_view raw_name = next_segment(rest);
    auto kind = core::parse_kind(kind_text);
    auto name = decode_segment(raw_name, ex.scratch.path_segment);
    if (!kind || !name || raw_name.empty() || !rest.empty() || extra_slash) {
        ex.response.fail(404, "metric not found");
        return {};
    }
    return Call::store(Call::Op::get, {*name, *kind, 0, 0}, Call::Reply::value_text);
}

Router::Call Router::update_json(Exchange& ex, core::JsonCodec& codec) const
{
    auto update = codec.parse_metric(ex.body);
    if (!update) {
        ex.response.fail(update.error());
        return {};
    }
    return Call::store(Call::Op::apply, *update, Call::Reply::json);
}

Router::Call Router::value_json(Exchange& ex, core::JsonCodec& codec) const
{
    auto query = codec.parse_query(ex.body);
    if (!query) {
        ex.response.fail(query.error());
        return {};
    }
    return Call::store(Call::Op::get, {query->id, query->kind, 0, 0}, Call::Reply::json);
}

Router::Call Router::update_batch(Exchange& ex, JsonScratch& json) const
{
    if (auto r = json.codec.parse_batch(ex.body, json.batch, limits_.max_batch); !r) {
        ex.response.fail(r.error());
        return {};
    }
    return Call::only(Call::Op::apply_batch);
}

void Router::reply(Exchange& ex, const Call& call, const core::Result<core::Metric>& stored)
{
    if (!stored) {
        ex.response.fail(stored.error());
        return;
    }
    if (ex.audit_ids != nullptr && call.op == Call::Op::apply)
        append_audit_id(*ex.audit_ids, stored->id);
    switch (call.reply) {
    case Call::Reply::ok_text:
        ex.response.text("OK");
        break;
    case Call::Reply::value_text:
        ex.response.status = 200;
        ex.response.type = content_type::text;
        ex.response.body.clear();
        write_value_text(ex.response.body, *stored);
        break;
    case Call::Reply::json:
        ex.response.json([&](fmt::memory_buffer& out) { core::write_json(out, *stored); });
        break;
    }
}

void Router::reply_batch(Exchange& ex, std::span<const core::Metric> stored, const core::Result<void>& r)
{
    if (!r) {
        ex.response.fail(r.error());
        return;
    }
    if (ex.audit_ids != nullptr)
        for (const core::Metric& m : stored)
            append_audit_id(*ex.audit_ids, m.id);
    ex.response.json([&](fmt::memory_buffer& out) { core::write_json(out, stored); });
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
