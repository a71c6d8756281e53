// parse_metric / parse_query on arbitrary bytes: no crash, the codec answers exactly as its
// simdjson path alone does (the same error, or the same metric bit for bit), and any accepted
// metric writes back to JSON that parses to an equal metric.
#include "core/json.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

core::OwnedMetric own(const core::Metric& m) { return {std::string{m.id}, m.kind, m.value, m.delta}; }

bool same(const core::OwnedMetric& a, const core::Metric& b)
{
    return a.id == b.id && a.kind == b.kind && a.delta == b.delta &&
           std::bit_cast<std::uint64_t>(a.value) == std::bit_cast<std::uint64_t>(b.value);
}

bool same_answer(const core::Result<core::Metric>& a, const core::Result<core::Metric>& b)
{
    if (!a || !b)
        return a.error() == b.error();
    return same(own(*a), *b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static core::JsonCodec codec;
    static core::JsonCodec simdjson_only{core::JsonCodec::Parsers::simdjson_only};
    const std::string_view s{reinterpret_cast<const char*>(data), size};
    fmt::memory_buffer out;
    auto m = codec.parse_metric(s);
    if (!same_answer(m, simdjson_only.parse_metric(s)))
        std::abort();
    if (m) {
        if (!core::validate(*m))
            std::abort();
        const core::OwnedMetric first = own(*m);  // the view dies with the next parse
        core::write_json(out, first.view());
        auto again = codec.parse_metric({out.data(), out.size()});
        if (!again || !same(first, *again))
            std::abort();
    }
    auto q = codec.parse_query(s);
    if (!same_answer(q, simdjson_only.parse_query(s)))
        std::abort();
    if (q) {
        if (!core::valid_name(q->id) || q->value != 0 || q->delta != 0)
            std::abort();
    }
    return 0;
}
