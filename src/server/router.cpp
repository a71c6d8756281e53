#include "server/router.hpp"

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/json.hpp"
#include "core/number.hpp"
#include "server/audit.hpp"
#include "server/endpoints.hpp"
#include "server/render.hpp"

#include <memory>
#include <stdexcept>
#include <vector>

namespace server {
namespace {

using core::Errc;
using http::Method;
using storage::Op;

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
/// body it has seen, and 64 connections' worth evict each other from the cache (BM_UpdateBatchHandler
/// against the /updates/ load test, docs/PROFILING.md). Shared ones stay hot; a handler that
/// suspends (PostgreSQL) holds its own until it ends.
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

/// A request checked and reduced to the one storage call it needs: the router's work before
/// and after that call is plain code, shared by the coroutine and the plain path.
struct Router::Call {
    enum class What : std::uint8_t { none, storage, list, ping };
    /// How the storage's answer is sent.
    enum class Reply : std::uint8_t { ok_text, value_text, json, batch };

    What what = What::none;  ///< none: already answered (an error)
    Reply reply = Reply::json;
    storage::Request request{};
    std::string_view type;  ///< list: the content type
    ListingWriter write = nullptr;

    static Call with(What what)
    {
        Call c;
        c.what = what;
        return c;
    }
    static Call store(Op op, const core::Metric& m, Reply reply)
    {
        Call c = with(What::storage);
        c.request.op = op;
        // Member by member, the id as two words: `m` is often in a Result that the JSON codec
        // has just written through the stack with 8-byte stores, and GCC 12 copies a Metric
        // or a string_view with 16-byte loads, which cannot be forwarded from them (a
        // store-forwarding stall; BM_UpdateJSONHandler in bench/handlers_bench.cpp).
        c.request.metric.id = {m.id.data(), core::bytes::opaque(m.id.size())};
        c.request.metric.kind = m.kind;
        c.request.metric.value = m.value;
        c.request.metric.delta = m.delta;
        c.reply = reply;
        return c;
    }
    static Call listing(std::string_view type, ListingWriter write)
    {
        Call c = with(What::list);
        c.type = type;
        c.write = write;
        return c;
    }
};

namespace {

void write_index(fmt::memory_buffer& out, std::span<const core::OwnedMetric> all)
{
    write_index_html(out, all, core::unix_millis());
}

void write_listing(fmt::memory_buffer& out, std::span<const core::OwnedMetric> all)
{
    core::write_json_listing(out, all);
}

}  // namespace

core::awaitable<void> Router::operator()(Exchange& ex) const
{
    JsonLease json;
    const Call call = route(ex, json);
    switch (call.what) {
    case Call::What::none:
        break;
    case Call::What::storage: {
        // Statements: see core/asio.hpp on co_await in conditions.
        auto r = storage_.try_now(call.request);
        if (!r)
            r = co_await storage_.run(call.request);
        reply(ex, call, *r);
        break;
    }
    case Call::What::list: {
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
    case Call::What::ping: {
        const bool healthy = co_await storage_.ping();  // a statement: see core/asio.hpp
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
    const Endpoint* e = find_endpoint(request.path);
    return storage_.answers_now() && (e == nullptr || !e->waits);
}

void Router::answer_now(Exchange& ex) const
{
    JsonLease json;
    const Call call = route(ex, json);
    switch (call.what) {
    case Call::What::none:
        return;
    case Call::What::storage:
        // .value(): the storage promised (answers_now) to answer at once; a broken promise is a
        // bad_optional_access, which GuardExceptions answers with a 500.
        return reply(ex, call, storage_.try_now(call.request).value());
    case Call::What::list:
    case Call::What::ping:
        break;
    }
    throw std::logic_error("answer_now: a route that waits for the storage");
}

Router::Call Router::route(Exchange& ex, JsonLease& json) const
{
    const std::string_view path = ex.request.path;
    const Endpoint* endpoint = find_endpoint(path);
    if (endpoint == nullptr) {
        ex.response.fail(404, "not found");
        return {};
    }
    if (!accepts(*endpoint, ex.request.method)) {
        ex.response.fail(405, "method not allowed");
        ex.response.add_header("Allow", endpoint->allow);
        return {};
    }
    const bool remove = ex.request.method == Method::delete_;
    switch (endpoint->route) {
    case Route::update_json:
        return update_json(ex, json->codec);
    case Route::update_batch:
        return update_batch(ex, *json);
    case Route::value_json:
        return value_json(ex, json->codec, remove ? Op::remove : Op::get);
    case Route::values:
        return Call::listing(content_type::json, write_listing);
    case Route::update_url:
        return update_url(ex, path.substr(endpoint->path.size()));
    case Route::value_url:
        return value_url(ex, path.substr(endpoint->path.size()), remove ? Op::remove : Op::get);
    case Route::index:
        return Call::listing(content_type::html, write_index);
    case Route::ping:
        return Call::with(Call::What::ping);
    case Route::metrics:
        return Call::listing(content_type::prometheus, write_prometheus);
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
    return Call::store(Op::update, update, Call::Reply::ok_text);
}

Router::Call Router::value_url(Exchange& ex, std::string_view rest, Op op) const
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
    return Call::store(op, {*name, *kind, 0, 0}, Call::Reply::value_text);
}

Router::Call Router::update_json(Exchange& ex, core::JsonCodec& codec) const
{
    auto update = codec.parse_metric(ex.body);
    if (!update) {
        ex.response.fail(update.error());
        return {};
    }
    return Call::store(Op::update, *update, Call::Reply::json);
}

Router::Call Router::value_json(Exchange& ex, core::JsonCodec& codec, Op op) const
{
    auto query = codec.parse_query(ex.body);
    if (!query) {
        ex.response.fail(query.error());
        return {};
    }
    return Call::store(op, {query->id, query->kind, 0, 0}, Call::Reply::json);
}

Router::Call Router::update_batch(Exchange& ex, JsonScratch& json) const
{
    if (auto r = json.codec.parse_batch(ex.body, json.batch, limits_.max_batch); !r) {
        ex.response.fail(r.error());
        return {};
    }
    Call c = Call::with(Call::What::storage);
    c.request.op = Op::update_batch;
    c.request.batch = json.batch;
    c.request.stored = &json.stored;
    c.reply = Call::Reply::batch;
    return c;
}

void Router::reply(Exchange& ex, const Call& call, const core::Result<core::Metric>& stored)
{
    if (!stored) {
        ex.response.fail(stored.error());
        return;
    }
    const storage::Request& r = call.request;
    if (ex.audit_ids != nullptr && r.op == Op::update)
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
    case Call::Reply::batch:
        reply_batch(ex, *r.stored);
        break;
    }
}

void Router::reply_batch(Exchange& ex, std::span<const core::Metric> stored)
{
    if (ex.audit_ids != nullptr)
        for (const core::Metric& m : stored)
            append_audit_id(*ex.audit_ids, m.id);
    ex.response.json([&](fmt::memory_buffer& out) { core::write_json(out, stored); });
}

}  // namespace server
