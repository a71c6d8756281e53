// A property test of /metrics: for random names of both kinds, the exposition is valid
// Prometheus text 0.0.4 (checked by a small parser that follows the rules Prometheus's own
// parser enforces) and carries every metric exactly once, recoverable with its kind and value.

#include "server/render.hpp"
#include "server/router.hpp"

#include "core/metric.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace {

struct Series {
    std::string id;  ///< recovered from the name or the `id` label
    core::Kind kind;
    double value;
};

bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

/// Reads a metric or label name at `pos`; empty when there is none.
std::string read_name(const std::string& line, std::size_t& pos, bool colon_allowed)
{
    const std::size_t from = pos;
    while (pos < line.size() && (pos == from ? name_start(line[pos]) : name_char(line[pos])) &&
           (colon_allowed || line[pos] != ':'))
        ++pos;
    return line.substr(from, pos - from);
}

/// Checks `text` against the text format 0.0.4 and returns its series. Any breach fails the
/// test with the offending line: one TYPE per family, before its samples; a family's samples
/// contiguous; valid names; labels with only the escapes \\ \" \n; a float value; no series twice.
std::vector<Series> parse_exposition(const std::string& text)
{
    std::vector<Series> out;
    std::map<std::string, core::Kind> types;
    std::set<std::string> closed;  // families whose samples have ended
    std::set<std::string> series;
    std::string current;
    REQUIRE((text.empty() || text.back() == '\n'));
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t eol = text.find('\n', at);
        const std::string line = text.substr(at, eol - at);
        at = eol + 1;
        CAPTURE(line);
        if (line.starts_with("# TYPE ")) {
            std::size_t pos = 7;
            const std::string name = read_name(line, pos, true);
            REQUIRE(!name.empty());
            REQUIRE(line[pos] == ' ');
            const std::string kind = line.substr(pos + 1);
            REQUIRE((kind == "gauge" || kind == "counter"));
            REQUIRE_MESSAGE(types.count(name) == 0, "second TYPE line for " << name);
            types[name] = kind == "gauge" ? core::Kind::gauge : core::Kind::counter;
            if (!current.empty())
                closed.insert(current);
            current = name;
            continue;
        }
        REQUIRE(!line.starts_with("#"));
        std::size_t pos = 0;
        const std::string name = read_name(line, pos, true);
        REQUIRE(!name.empty());
        REQUIRE_MESSAGE(name == current, "a sample outside its family's block");
        REQUIRE(closed.count(name) == 0);
        std::string id;
        std::string labels;
        if (line[pos] == '{') {
            ++pos;
            while (line[pos] != '}') {
                const std::string label = read_name(line, pos, false);
                REQUIRE(label == "id");
                REQUIRE(line.substr(pos, 2) == "=\"");
                pos += 2;
                std::string value;
                for (; line.at(pos) != '"'; ++pos) {
                    if (line[pos] == '\\') {
                        const char e = line.at(++pos);
                        REQUIRE((e == '\\' || e == '"' || e == 'n'));
                        value.push_back(e == 'n' ? '\n' : e);
                    } else {
                        value.push_back(line[pos]);
                    }
                }
                ++pos;
                REQUIRE(id.empty());
                id = value;
                labels = line.substr(0, pos);
                if (line[pos] == ',')
                    ++pos;
            }
            ++pos;
        }
        REQUIRE(line[pos] == ' ');
        const std::string number = line.substr(pos + 1);
        std::size_t used = 0;
        const double value = std::stod(number, &used);
        REQUIRE(used == number.size());
        REQUIRE_MESSAGE(series.insert(name + labels).second, "a series twice");
        const core::Kind kind = types.at(name);
        if (id.empty()) {
            id = name;
            if (kind == core::Kind::counter) {
                REQUIRE(name.ends_with("_total"));
                id.resize(id.size() - 6);
            }
        }
        out.push_back({id, kind, value});
    }
    return out;
}

/// Names built from pieces that collide after sanitising or suffixing: `_total`, `_gauge`,
/// `_counter`, punctuation that becomes '_', digits in front, multi-byte UTF-8, quotes.
std::string random_name(std::mt19937& rng)
{
    static const std::vector<std::string> pieces{
        "x", "_", "_total", "_gauge", "_counter", ".", "-", "1", ":", "\xc3\xa9", "\"", "\\", "total", "a", "__"};
    std::uniform_int_distribution<std::size_t> count(1, 5);
    std::uniform_int_distribution<std::size_t> pick(0, pieces.size() - 1);
    std::string name;
    for (std::size_t n = count(rng); n > 0; --n)
        name += pieces[pick(rng)];
    return name;
}

}  // namespace

TEST_CASE("any names of both kinds give one TYPE per family and every metric exactly once")
{
    std::mt19937 rng{20};
    std::bernoulli_distribution counter(0.5);
    for (int round = 0; round < 2000; ++round) {
        std::map<std::pair<std::string, core::Kind>, double> expected;  // one per (id, kind), as stored
        std::vector<core::OwnedMetric> metrics;
        for (int i = 0; i < 12; ++i) {
            const std::string id = random_name(rng);
            REQUIRE(core::valid_name(id));
            const core::Kind kind = counter(rng) ? core::Kind::counter : core::Kind::gauge;
            if (!expected.emplace(std::pair{id, kind}, i).second)
                continue;
            if (kind == core::Kind::counter)
                metrics.push_back({id, kind, 0, i});
            else
                metrics.push_back({id, kind, i + 0.5, 0});
            expected[{id, kind}] = kind == core::Kind::counter ? i : i + 0.5;
        }
        std::sort(metrics.begin(), metrics.end(), [](const auto& a, const auto& b) {
            return std::tie(a.id, a.kind) < std::tie(b.id, b.kind);
        });
        fmt::memory_buffer out;
        server::write_prometheus(out, metrics);
        const std::string text = fmt::to_string(out);
        CAPTURE(text);
        std::map<std::pair<std::string, core::Kind>, double> seen;
        for (const Series& s : parse_exposition(text))
            REQUIRE_MESSAGE(seen.emplace(std::pair{s.id, s.kind}, s.value).second, "metric twice: " << s.id);
        CHECK(seen == expected);
    }
}
