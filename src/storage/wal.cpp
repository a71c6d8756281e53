#include "storage/wal.hpp"

#include "core/log.hpp"

#include <fmt/format.h>
#include <libdeflate.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace storage::wal {

using core::Errc;
using core::Kind;
using core::Metric;
using core::Result;

namespace {

// Element: kind u8 | value or delta as 8 bytes | name length u8 | name.
constexpr std::size_t element_fixed_bytes = 1 + 8 + 1;
constexpr std::size_t batch_count_bytes = 4;

/// Stores `v` little-endian at `p` (one plain store where the target is little-endian).
template <class T>
char* put_le(char* p, T v) noexcept
{
    auto u = static_cast<std::make_unsigned_t<T>>(v);
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        p[i] = static_cast<char>(u & 0xff);
        u = static_cast<decltype(u)>(u >> 8);
    }
    return p + sizeof(T);
}

template <class T>
T get_le(const char* p) noexcept
{
    std::make_unsigned_t<T> u = 0;
    for (std::size_t i = sizeof(T); i-- > 0;)
        u = static_cast<decltype(u)>((u << 8) | static_cast<unsigned char>(p[i]));
    return static_cast<T>(u);
}

std::uint32_t crc_of(std::string_view bytes) noexcept
{
    return libdeflate_crc32(0, bytes.data(), bytes.size());
}

char* put_element(char* p, const Metric& m, bool with_value) noexcept
{
    *p++ = static_cast<char>(m.kind);
    if (with_value)
        p = m.kind == Kind::gauge ? put_le(p, std::bit_cast<std::uint64_t>(m.value)) : put_le(p, m.delta);
    *p++ = static_cast<char>(m.id.size());
    std::memcpy(p, m.id.data(), m.id.size());
    return p + m.id.size();
}

/// Reads one element at `p` (bounded by `end`); false if it does not fit or is invalid.
bool get_element(const char*& p, const char* end, Metric& m, bool with_value) noexcept
{
    const std::size_t fixed = with_value ? element_fixed_bytes : 2;
    if (static_cast<std::size_t>(end - p) < fixed)
        return false;
    const auto kind = static_cast<unsigned char>(*p++);
    if (kind > static_cast<unsigned char>(Kind::counter))
        return false;
    m.kind = static_cast<Kind>(kind);
    m.value = 0;
    m.delta = 0;
    if (with_value) {
        if (m.kind == Kind::gauge)
            m.value = std::bit_cast<double>(get_le<std::uint64_t>(p));
        else
            m.delta = get_le<std::int64_t>(p);
        p += 8;
    }
    const auto length = static_cast<unsigned char>(*p++);
    if (length == 0 || static_cast<std::size_t>(end - p) < length)
        return false;
    m.id = {p, length};
    p += length;
    return core::validate(m).has_value();
}

bool carries_value(RecordType type) noexcept
{
    return type == RecordType::update || type == RecordType::batch;
}

bool decode_payload(RecordType type, std::string_view payload, std::vector<Metric>& out)
{
    out.clear();
    const char* p = payload.data();
    const char* end = p + payload.size();
    std::size_t count = 1;
    if (type == RecordType::batch) {
        if (payload.size() < batch_count_bytes)
            return false;
        count = get_le<std::uint32_t>(p);
        p += batch_count_bytes;
        // Each element takes at least this much: bounds the reservation by the bytes present.
        if (count == 0 || count > payload.size() / (element_fixed_bytes + 1))
            return false;
    }
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        Metric m;
        if (!get_element(p, end, m, carries_value(type)))
            return false;
        out.push_back(m);
    }
    return p == end;
}

/// The first seq of a segment file's name (20 decimal digits), or 0 if it is not one.
std::uint64_t seq_of_name(std::string_view name) noexcept
{
    constexpr std::string_view suffix = ".seg";
    if (name.size() != 20 + suffix.size() || !name.ends_with(suffix))
        return 0;
    std::uint64_t seq = 0;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + 20, seq);
    return ec == std::errc{} && end == name.data() + 20 ? seq : 0;
}

/// A read-only view of a whole file (mmap: a 100 MB log is replayed without copying it).
class Mapped {
public:
    Mapped() = default;
    Mapped(const Mapped&) = delete;
    Mapped& operator=(const Mapped&) = delete;
    ~Mapped()
    {
        if (data_ != nullptr)
            ::munmap(data_, size_);
    }
    /// False: errno says why.
    bool map(int fd, std::size_t size) noexcept
    {
        if (size == 0)
            return true;
        void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
            return false;
        data_ = p;
        size_ = size;
        return true;
    }
    std::string_view bytes() const noexcept { return {static_cast<const char*>(data_), size_}; }

private:
    void* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace

void encode(std::string& out, RecordType type, std::uint64_t seq, std::int64_t time, std::span<const Metric> metrics)
{
    assert(!metrics.empty() && (type == RecordType::batch || metrics.size() == 1));
    const bool with_value = carries_value(type);
    // Sized first, then written in place: a batch of thousands costs one resize, not a
    // push_back per byte.
    std::size_t payload = type == RecordType::batch ? batch_count_bytes : 0;
    for (const Metric& m : metrics) {
        assert(!m.id.empty() && m.id.size() <= core::max_name_bytes);
        payload += (with_value ? element_fixed_bytes : 2) + m.id.size();
    }
    if (payload > max_payload_bytes)
        throw std::length_error("write-ahead log record too large");
    const std::size_t start = out.size();
    out.resize(start + header_bytes + payload);
    char* const record = out.data() + start;
    char* p = put_le(record + 4, static_cast<std::uint32_t>(payload));
    *p++ = static_cast<char>(type);
    p = put_le(p, seq);
    p = put_le(p, time);
    if (type == RecordType::batch)
        p = put_le(p, static_cast<std::uint32_t>(metrics.size()));
    for (const Metric& m : metrics)
        p = put_element(p, m, with_value);
    assert(p == record + header_bytes + payload);
    put_le(record, crc_of({record + 4, header_bytes - 4 + payload}));
}

std::string_view to_string(ReadStatus s) noexcept
{
    switch (s) {
    case ReadStatus::record:
        return "record";
    case ReadStatus::end:
        return "end";
    case ReadStatus::torn:
        return "torn record";
    case ReadStatus::corrupt:
        return "corrupt record";
    case ReadStatus::gap:
        return "sequence gap";
    }
    return "unknown";
}

RecordReader::RecordReader(std::string_view bytes, std::uint64_t first_seq) noexcept
    : bytes_(bytes), next_seq_(first_seq)
{
}

ReadStatus RecordReader::next(Record& out)
{
    const std::string_view rest = bytes_.substr(offset_);
    if (rest.empty())
        return ReadStatus::end;
    if (rest.size() < header_bytes)
        return ReadStatus::torn;
    const char* p = rest.data();
    const auto crc = get_le<std::uint32_t>(p);
    const auto length = get_le<std::uint32_t>(p + 4);
    if (length > max_payload_bytes)
        return ReadStatus::corrupt;
    if (rest.size() - header_bytes < length)
        return ReadStatus::torn;
    const std::string_view covered = rest.substr(4, header_bytes - 4 + length);
    if (crc_of(covered) != crc)
        return ReadStatus::corrupt;
    const auto type = static_cast<unsigned char>(p[8]);
    if (type < static_cast<unsigned char>(RecordType::update) || type > static_cast<unsigned char>(RecordType::expire))
        return ReadStatus::corrupt;
    out.type = static_cast<RecordType>(type);
    out.seq = get_le<std::uint64_t>(p + 9);
    out.time = get_le<std::int64_t>(p + 17);
    if (!decode_payload(out.type, rest.substr(header_bytes, length), out.metrics))
        return ReadStatus::corrupt;
    if (out.seq != next_seq_)
        return ReadStatus::gap;
    // A seq near the top would wrap: no log reaches it honestly.
    if (out.seq > UINT64_MAX - out.span() - 1)
        return ReadStatus::corrupt;
    offset_ += header_bytes + length;
    next_seq_ = out.seq + out.span();
    return ReadStatus::record;
}

Log::Log(std::string dir, FileOps ops) : dir_(std::move(dir)), ops_(ops) {}

std::string Log::segment_path(std::uint64_t first_seq) const
{
    return fmt::format("{}/{:020}.seg", dir_, first_seq);
}

int Log::do_sync(int fd) noexcept
{
    ++syncs_;
    return ops_.fdatasync != nullptr ? ops_.fdatasync(fd) : ::fdatasync(fd);
}

std::vector<std::uint64_t> Log::segments() const
{
    std::vector<std::uint64_t> out;
    for (const auto& [seq, bytes] : older_)
        out.push_back(seq);
    if (fd_.ok())
        out.push_back(segment_);
    return out;
}

namespace {

/// The segments in `dir`, sorted by first seq; false: errno says why.
bool list_segments(const std::string& dir, std::vector<std::uint64_t>& out)
{
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr)
        return false;
    while (const dirent* e = ::readdir(d)) {
        if (const std::uint64_t seq = seq_of_name(e->d_name); seq != 0)
            out.push_back(seq);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return true;
}

}  // namespace

std::unique_ptr<Log> Log::open(const std::string& dir, const std::function<void(const Record&)>& replay,
                               Recovery& recovery, std::string& error, FileOps ops)
{
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        error = fmt::format("cannot create {}: {}", dir, std::strerror(errno));
        return nullptr;
    }
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        error = fmt::format("{} is not a directory", dir);
        return nullptr;
    }
    std::vector<std::uint64_t> names;
    if (!list_segments(dir, names)) {
        error = fmt::format("cannot list {}: {}", dir, std::strerror(errno));
        return nullptr;
    }
    std::unique_ptr<Log> log{new Log{dir, ops}};
    recovery = {};
    std::uint64_t expected = names.empty() ? 1 : names.front();
    bool cut = false;
    Record record;
    for (const std::uint64_t first : names) {
        const std::string path = log->segment_path(first);
        if (cut || first != expected) {
            // Cannot follow what was kept: set aside, never replayed, never overwritten.
            if (!cut)
                recovery.cut = fmt::format("{}: starts at seq {}, expected {}", path, first, expected);
            cut = true;
            const std::string aside = path + ".broken";
            if (::rename(path.c_str(), aside.c_str()) != 0) {
                error = fmt::format("cannot rename {}: {}", path, std::strerror(errno));
                return nullptr;
            }
            core::log::error("write-ahead log: {} set aside as {}", path, aside);
            continue;
        }
        core::file::Opened file = core::file::open_regular_for_read(path);
        if (!file) {
            error = fmt::format("cannot open {}: {}", path, file.error);
            return nullptr;
        }
        struct stat fst {};
        Mapped mapped;
        if (::fstat(file.fd.get(), &fst) != 0 || !mapped.map(file.fd.get(), static_cast<std::size_t>(fst.st_size))) {
            error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
            return nullptr;
        }
        RecordReader reader{mapped.bytes(), first};
        ReadStatus status;
        while ((status = reader.next(record)) == ReadStatus::record) {
            replay(record);
            ++recovery.records;
        }
        ++recovery.segments;
        expected = reader.next_seq();
        if (status != ReadStatus::end) {
            cut = true;
            recovery.cut = fmt::format("{}: {} at offset {} (of {} bytes); the log is cut there", path,
                                       to_string(status), reader.good_end(), mapped.bytes().size());
            if (::truncate(path.c_str(), static_cast<off_t>(reader.good_end())) != 0) {
                error = fmt::format("cannot cut {}: {}", path, std::strerror(errno));
                return nullptr;
            }
        }
        log->older_.emplace_back(first, reader.good_end());
        log->older_bytes_ += reader.good_end();
    }
    recovery.next_seq = expected;
    log->next_seq_ = log->synced_next_seq_ = expected;
    return log;
}

Result<void> Log::open_segment(std::uint64_t first_seq, std::uint64_t size)
{
    const std::string path = segment_path(first_seq);
    core::file::Opened file = core::file::open_regular_for_append(path);
    if (!file) {
        core::log::error("write-ahead log: cannot open {}: {}", path, file.error);
        return Errc::io_error;
    }
    if (!core::file::sync_directory(dir_)) {
        core::log::error("write-ahead log: cannot sync {}: {}", dir_, std::strerror(errno));
        return Errc::io_error;
    }
    fd_ = std::move(file.fd);
    segment_ = first_seq;
    written_end_ = synced_end_ = size;
    return {};
}

Result<void> Log::start(std::uint64_t next_seq)
{
    assert(!fd_.ok());
    if (!older_.empty() && next_seq == next_seq_) {
        const auto [first, size] = older_.back();
        older_.pop_back();
        older_bytes_ -= size;
        if (Result<void> r = open_segment(first, size); !r) {
            older_.emplace_back(first, size);
            older_bytes_ += size;
            return r;
        }
    } else {
        // The state is ahead of the log (a snapshot holds changes whose segments are gone, or the
        // log was removed): what is left of the log is older than the snapshot, and a new
        // segment after it would not follow on. It goes.
        if (!older_.empty())
            core::log::warn("write-ahead log: {} holds seqs below {}, which the snapshot already holds: deleted", dir_,
                            next_seq);
        drop_before(UINT64_MAX);
        if (Result<void> r = open_segment(next_seq, 0); !r)
            return r;
    }
    next_seq_ = synced_next_seq_ = next_seq;
    return {};
}

bool Log::truncate_to(std::uint64_t end)
{
    if (::ftruncate(fd_.get(), static_cast<off_t>(end)) != 0) {
        core::log::error("write-ahead log: cannot truncate {} to {} bytes: {}", segment_path(segment_), end,
                         std::strerror(errno));
        dirty_ = true;
        return false;
    }
    dirty_ = false;
    return true;
}

Result<void> Log::append(std::string_view records, std::uint64_t next_seq)
{
    // A partial record left by an earlier failure goes first: nothing may follow it.
    if (dirty_ && !truncate_to(written_end_)) {
        write_ok_ = false;
        return Errc::io_error;
    }
    if (!fd_.ok() || !ops_.write_all(fd_.get(), records)) {
        const int err = errno;
        core::log::error("write-ahead log: cannot write {}: {}", segment_path(segment_), std::strerror(err));
        if (fd_.ok())
            truncate_to(written_end_);
        write_ok_ = false;
        return Errc::io_error;
    }
    write_ok_ = true;
    written_end_ += records.size();
    next_seq_ = next_seq;
    return {};
}

bool Log::sync_data(const SyncPoint& point) noexcept
{
    return do_sync(point.fd) == 0;
}

Result<std::uint64_t> Log::finish_sync(const SyncPoint& point, bool ok, bool rollback)
{
    if (ok) {
        synced_end_ = std::max(synced_end_, point.end);
        synced_next_seq_ = std::max(synced_next_seq_, point.next_seq);
        sync_ok_ = true;
        return synced_next_seq_;
    }
    core::log::error("write-ahead log: cannot sync {}: {}", segment_path(segment_), std::strerror(errno));
    sync_ok_ = false;
    if (rollback) {
        // After a failed fsync the kernel may have dropped the dirty pages: only what an
        // earlier sync covered is known to be on disk, so everything after it goes.
        written_end_ = synced_end_;
        next_seq_ = synced_next_seq_;
        if (truncate_to(synced_end_) && do_sync(fd_.get()) != 0)
            dirty_ = true;
    }
    return Errc::io_error;
}

Result<std::uint64_t> Log::rotate()
{
    if (do_sync(fd_.get()) != 0) {
        core::log::error("write-ahead log: cannot sync {}: {}", segment_path(segment_), std::strerror(errno));
        sync_ok_ = false;
        return Errc::io_error;
    }
    sync_ok_ = true;
    synced_end_ = written_end_;
    synced_next_seq_ = next_seq_;
    if (written_end_ == 0)
        return segment_;  // nothing in the open segment: it already starts at next_seq
    core::file::Fd previous = std::move(fd_);
    const std::uint64_t previous_first = segment_;
    const std::uint64_t previous_bytes = written_end_;
    if (Result<void> r = open_segment(next_seq_, 0); !r) {
        fd_ = std::move(previous);
        segment_ = previous_first;
        written_end_ = synced_end_ = previous_bytes;
        return r.error();
    }
    older_.emplace_back(previous_first, previous_bytes);
    older_bytes_ += previous_bytes;
    return segment_;
}

void Log::drop_before(std::uint64_t first_seq)
{
    bool dropped = false;
    while (!older_.empty() && older_.front().first < first_seq) {
        const std::string path = segment_path(older_.front().first);
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            core::log::error("write-ahead log: cannot delete {}: {}", path, std::strerror(errno));
            break;
        }
        older_bytes_ -= older_.front().second;
        older_.erase(older_.begin());
        dropped = true;
    }
    if (dropped && !core::file::sync_directory(dir_))
        core::log::error("write-ahead log: cannot sync {}: {}", dir_, std::strerror(errno));
}

Committer::Committer(Log& log, std::mutex& mutex, std::chrono::milliseconds interval, OnSync on_sync)
    : log_(log), mutex_(mutex), interval_(interval), on_sync_(std::move(on_sync))
{
    thread_ = std::thread{[this] { run(); }};
}

Committer::~Committer()
{
    stop();
}

void Committer::stop()
{
    {
        std::lock_guard lock{mutex_};
        stop_ = true;
    }
    wake_.notify_one();
    std::lock_guard join{join_mutex_};
    if (thread_.joinable())
        thread_.join();
}

Result<std::uint64_t> Committer::rotate()
{
    std::unique_lock lock{mutex_};
    if (stop_)
        return Errc::storage_unavailable;
    const std::uint64_t ticket = ++rotations_requested_;
    wake_.notify_one();
    rotated_.wait(lock, [&] { return rotations_done_ >= ticket || stop_; });
    if (rotations_done_ < ticket)
        return Errc::storage_unavailable;
    return rotation_;
}

void Committer::sync_once(std::unique_lock<std::mutex>& lock)
{
    const Log::SyncPoint point = log_.sync_point();
    lock.unlock();
    const bool ok = log_.sync_data(point);
    lock.lock();
    on_sync_(log_.finish_sync(point, ok, interval_.count() == 0));
}

void Committer::rotate_now()
{
    // All under the mutex, from the sync to the new segment: no record can be appended in
    // between, so every record before the rotation is synced (and, with interval 0, applied by
    // on_sync) when the owner reads its state for a snapshot. Appends wait for one sync and one
    // file creation, once per compaction.
    if (log_.unsynced()) {
        const Log::SyncPoint point = log_.sync_point();
        on_sync_(log_.finish_sync(point, log_.sync_data(point), interval_.count() == 0));
    }
    rotation_ = log_.unsynced() ? Result<std::uint64_t>{Errc::io_error} : log_.rotate();
    rotations_done_ = rotations_requested_;
    rotated_.notify_all();
}

void Committer::run()
{
    std::unique_lock lock{mutex_};
    const auto requested = [this] { return stop_ || rotations_requested_ > rotations_done_; };
    for (;;) {
        if (interval_.count() == 0)
            wake_.wait(lock, [&] { return requested() || log_.unsynced(); });
        else
            wake_.wait_for(lock, interval_, requested);
        if (rotations_requested_ > rotations_done_)
            rotate_now();
        else if (log_.unsynced())
            sync_once(lock);
        if (stop_)
            break;
    }
    if (log_.unsynced())  // the final sync of an interval log
        sync_once(lock);
    rotated_.notify_all();
}

}  // namespace storage::wal
