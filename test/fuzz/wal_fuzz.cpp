// Write-ahead log segments: never a crash or an unbounded allocation; every record read is
// valid (names, finite gauges, seqs that follow) and encoding it again gives the same bytes; the
// good part ends on a record boundary, and a clean end means every byte was read.
#include "core/metric.hpp"
#include "storage/wal.hpp"
#include "support/fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view bytes{reinterpret_cast<const char*>(data), size};
    // The segment's name: fixed, so that inputs can match it.
    constexpr std::uint64_t first_seq = 1;
    storage::wal::RecordReader reader{bytes, first_seq};
    storage::wal::Record record;
    std::string again;
    std::uint64_t expected = first_seq;
    storage::wal::ReadStatus status;
    while ((status = reader.next(record)) == storage::wal::ReadStatus::record) {
        FUZZ_CHECK(record.seq == expected && !record.metrics.empty());
        for (const core::Metric& m : record.metrics)
            FUZZ_CHECK(core::validate(m));
        expected += record.span();
        storage::wal::encode(again, record.type, record.seq, record.time, record.metrics);
    }
    FUZZ_CHECK(reader.next_seq() == expected);
    FUZZ_CHECK(reader.good_end() == again.size());
    FUZZ_CHECK(bytes.substr(0, again.size()) == again);
    FUZZ_CHECK(status != storage::wal::ReadStatus::end || again.size() == bytes.size());
    return 0;
}
