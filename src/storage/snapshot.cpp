#include "storage/snapshot.hpp"

#include "core/file.hpp"
#include "core/json.hpp"
#include "core/log.hpp"

#include <fmt/format.h>

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace storage {

using core::Errc;
using core::OwnedMetric;
using core::Result;

namespace {

/// Logs the failed step with errno's reason; returns io_error for the caller to pass on.
Errc fail_write(std::string_view step, const std::string& path)
{
    core::log::error("snapshot: {} {}: {}", step, path, std::strerror(errno));
    return Errc::io_error;
}

/// Hands `why` to the caller when it asked for it, or logs it.
Errc fail_load(std::string_view why, const std::string& path, std::string* reason)
{
    if (reason != nullptr)
        *reason = std::string{why};
    else
        core::log::error("snapshot: cannot load {}: {}", path, why);
    return Errc::corrupt_snapshot;
}

}  // namespace

namespace {

namespace sj = simdjson;
namespace od = simdjson::ondemand;

// simdjson 3.0.1 misreads some numbers of more than 19 significant digits (see read_double in
// core/json.cpp): a long token is read again with std::from_chars.
bool read_gauge(od::value& v, double& out) noexcept
{
    const std::string_view token = v.raw_json_token();
    if (v.get_double().get(out) != sj::SUCCESS)
        return false;
    if (token.size() > 20) {
        double exact = 0;
        const std::string_view trimmed = token.substr(0, token.find_first_of(" \t\r\n,}]"));
        if (std::from_chars(trimmed.data(), trimmed.data() + trimmed.size(), exact).ec == std::errc{})
            out = exact;
    }
    return true;
}

/// The null test of ondemand: false on an error too (the caller then reads the value, which fails).
bool is_null(od::value& v) noexcept
{
    bool null = false;
    return v.is_null().get(null) == sj::SUCCESS && null;
}

/// Reads the optional `updated_at` (Unix ms, >= 0) and `seq` of each element of a snapshot array
/// into `metrics` (already parsed, same order). False: a bad type or value, or a count mismatch.
bool read_stamps(std::string_view body, std::vector<OwnedMetric>& metrics)
{
    sj::padded_string padded{body};
    od::parser parser;
    od::document doc;
    od::array array;
    if (parser.iterate(padded).get(doc) != sj::SUCCESS || doc.get_array().get(array) != sj::SUCCESS)
        return false;
    std::size_t i = 0;
    for (auto element_result : array) {
        od::object object;
        if (element_result.get_object().get(object) != sj::SUCCESS || i == metrics.size())
            return false;
        for (auto field_result : object) {
            if (field_result.error() != sj::SUCCESS)
                return false;
            od::field field = std::move(field_result).value_unsafe();
            std::string_view key;
            if (field.unescaped_key().get(key) != sj::SUCCESS)
                return false;
            const bool is_time = key == "updated_at";
            if (!is_time && key != "seq")
                continue;
            od::value& v = field.value();
            if (is_null(v))
                continue;
            if (is_time) {
                std::int64_t t = 0;
                if (v.get_int64().get(t) != sj::SUCCESS || t < 0)
                    return false;
                metrics[i].updated_at = t;
            } else if (v.get_uint64().get(metrics[i].seq) != sj::SUCCESS) {
                return false;
            }
        }
        ++i;
    }
    return i == metrics.size();
}

/// Reads one object of the Go server's snapshot (`{"name": number, ...}`) into `out`.
bool read_go_kind(od::value& v, core::Kind kind, std::vector<OwnedMetric>& out)
{
    if (is_null(v))
        return true;
    od::object object;
    if (v.get_object().get(object) != sj::SUCCESS)
        return false;
    for (auto field_result : object) {
        if (field_result.error() != sj::SUCCESS)
            return false;
        od::field field = std::move(field_result).value_unsafe();
        std::string_view name;
        if (field.unescaped_key().get(name) != sj::SUCCESS)
            return false;
        OwnedMetric m{std::string{name}, kind, 0, 0};
        od::value& number = field.value();
        const bool read = kind == core::Kind::gauge ? read_gauge(number, m.value)
                                                    : number.get_int64().get(m.delta) == sj::SUCCESS;
        if (!read || !core::validate(m.view()))
            return false;
        out.push_back(std::move(m));
    }
    return true;
}

/// The Go server's snapshot: `{"gauges":{name:number},"counters":{name:integer}}` (either may be
/// missing or null; other keys are ignored, at least one of the two must be there).
Result<std::vector<OwnedMetric>> parse_go_snapshot(std::string_view body)
{
    sj::padded_string padded{body};
    od::parser parser;
    od::document doc;
    od::object object;
    if (parser.iterate(padded).get(doc) != sj::SUCCESS || doc.get_object().get(object) != sj::SUCCESS)
        return Errc::corrupt_snapshot;
    std::vector<OwnedMetric> out;
    bool known = false;
    for (auto field_result : object) {
        if (field_result.error() != sj::SUCCESS)
            return Errc::corrupt_snapshot;
        od::field field = std::move(field_result).value_unsafe();
        std::string_view key;
        if (field.unescaped_key().get(key) != sj::SUCCESS)
            return Errc::corrupt_snapshot;
        if (key == "gauges" || key == "counters") {
            known = true;
            if (!read_go_kind(field.value(), key == "gauges" ? core::Kind::gauge : core::Kind::counter, out))
                return Errc::corrupt_snapshot;
        }
        // Other keys: the iteration skips their values.
    }
    // Past the object nothing but whitespace: the location is out of bounds.
    const char* location = nullptr;
    if (!known || doc.current_location().get(location) != sj::OUT_OF_BOUNDS)
        return Errc::corrupt_snapshot;
    return out;
}

}  // namespace

Result<std::vector<OwnedMetric>> parse_snapshot(std::string_view body)
{
    if (body.size() > max_snapshot_bytes)
        return Errc::corrupt_snapshot;
    const std::size_t start = body.find_first_not_of(" \t\r\n");
    if (start == std::string_view::npos)
        return std::vector<OwnedMetric>{};
    if (body[start] == '{')
        return parse_go_snapshot(body);
    core::JsonCodec codec;
    std::vector<core::Metric> parsed;
    if (Result<void> r = codec.parse_batch(body, parsed, max_snapshot_bytes); !r) {
        if (r.error() == Errc::empty_batch)  // "[]": what an empty store writes
            return std::vector<OwnedMetric>{};
        return Errc::corrupt_snapshot;
    }
    std::vector<OwnedMetric> out;
    out.reserve(parsed.size());
    for (const core::Metric& m : parsed) {
        if (!core::validate(m))
            return Errc::corrupt_snapshot;
        out.push_back({std::string{m.id}, m.kind, m.value, m.delta});
    }
    // The stamps are a second, cheap pass, only when the file has any (older files do not).
    const bool stamped = body.find("\"updated_at\"") != std::string_view::npos ||
                         body.find("\"seq\"") != std::string_view::npos;
    if (stamped && !read_stamps(body, out))
        return Errc::corrupt_snapshot;
    return out;
}

void write_snapshot_json(fmt::memory_buffer& out, std::span<const OwnedMetric> metrics)
{
    out.push_back('[');
    for (std::size_t i = 0; i < metrics.size(); ++i) {
        if (i != 0)
            out.push_back(',');
        const OwnedMetric& m = metrics[i];
        core::write_json(out, m.view());
        if (m.updated_at == 0 && m.seq == 0)
            continue;
        out.resize(out.size() - 1);  // the closing brace, put back below
        if (m.updated_at != 0)
            fmt::format_to(std::back_inserter(out), R"(,"updated_at":{})", m.updated_at);
        if (m.seq != 0)
            fmt::format_to(std::back_inserter(out), R"(,"seq":{})", m.seq);
        out.push_back('}');
    }
    out.push_back(']');
}

SnapshotFile::SnapshotFile(std::string path)
    : path_(std::move(path)), directory_(core::file::directory_of(path_))
{
}

Result<void> SnapshotFile::write(std::span<const OwnedMetric> metrics)
{
    fmt::memory_buffer body;
    write_snapshot_json(body, metrics);

    std::lock_guard lock{write_mutex_};
    core::file::TempFile temp = core::file::create_temp_beside(path_);
    if (!temp.file) {
        core::log::error("snapshot: cannot create a temporary file beside {}: {}", path_, temp.file.error);
        return Errc::io_error;
    }
    const bool written = core::file::write_all(temp.file.fd.get(), {body.data(), body.size()}) &&
                         ::fsync(temp.file.fd.get()) == 0;
    if (!written || temp.file.fd.close() != 0) {
        const Errc e = fail_write("cannot write", temp.path);
        ::unlink(temp.path.c_str());
        return e;
    }
    if (::rename(temp.path.c_str(), path_.c_str()) != 0) {
        const Errc e = fail_write("cannot rename over", path_);
        ::unlink(temp.path.c_str());
        return e;
    }
    // The rename is durable only once the directory entry is: without this a crash may bring
    // back the old file (or none) although the caller was told the snapshot is on disk.
    if (!core::file::sync_directory(directory_))
        return fail_write("cannot sync directory", directory_);
    return {};
}

Result<std::vector<OwnedMetric>> SnapshotFile::load(std::string* reason) const
{
    core::file::Opened file = core::file::open_regular_for_read(path_);
    if (!file) {
        if (file.missing)
            return std::vector<OwnedMetric>{};
        return fail_load(file.error, path_, reason);
    }
    struct stat st {};
    if (::fstat(file.fd.get(), &st) != 0)
        return fail_load(std::strerror(errno), path_, reason);
    if (static_cast<std::size_t>(st.st_size) > max_snapshot_bytes)
        return fail_load(fmt::format("larger than {} bytes", max_snapshot_bytes), path_, reason);

    // Read to the end rather than trusting st_size (the file may change under us), bounded.
    std::string body(static_cast<std::size_t>(st.st_size) + 1, '\0');
    std::size_t used = 0;
    for (;;) {
        if (used == body.size()) {
            if (body.size() > max_snapshot_bytes)
                return fail_load(fmt::format("larger than {} bytes", max_snapshot_bytes), path_, reason);
            body.resize(std::min(2 * body.size(), max_snapshot_bytes + 1));
        }
        const ssize_t n = ::read(file.fd.get(), body.data() + used, body.size() - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail_load(std::strerror(errno), path_, reason);
        }
        if (n == 0)
            break;
        used += static_cast<std::size_t>(n);
    }
    body.resize(used);

    Result<std::vector<OwnedMetric>> parsed = parse_snapshot(body);
    if (!parsed)
        return fail_load("neither a JSON array of metrics nor the Go server's snapshot object", path_, reason);
    return parsed;
}

}  // namespace storage
