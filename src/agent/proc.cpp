#include "agent/proc.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <limits>
#include <optional>

namespace agent {
namespace {

constexpr bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) noexcept
{
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_space(s.back()))
        s.remove_suffix(1);
    return s;
}

/// A whole unsigned decimal, nothing else.
std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept
{
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty())
        return std::nullopt;
    return v;
}

/// Splits off the next line (without its '\n').
std::string_view next_line(std::string_view& text) noexcept
{
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    return line;
}

/// Calls `f(key, bytes)` for every `Key:  <number> kB` line (meminfo, status); a number without
/// a unit is taken as is. Lines whose value is not such a number are skipped.
template <class F>
void for_each_size_field(std::string_view text, F&& f)
{
    while (!text.empty()) {
        const std::string_view line = next_line(text);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos)
            continue;
        std::string_view value = trim(line.substr(colon + 1));
        std::uint64_t scale = 1;
        if (value.ends_with(" kB")) {
            value = trim(value.substr(0, value.size() - 3));
            scale = 1024;
        }
        const auto number = parse_u64(value);
        if (!number || *number > std::numeric_limits<std::uint64_t>::max() / scale)
            continue;
        f(line.substr(0, colon), *number * scale);
    }
}

}  // namespace

core::Result<MemInfo> parse_meminfo(std::string_view text)
{
    MemInfo m;
    bool total = false;
    bool free = false;
    for_each_size_field(text, [&](std::string_view key, std::uint64_t bytes) {
        if (key == "MemTotal") {
            m.total = bytes;
            total = true;
        } else if (key == "MemFree") {
            m.free = bytes;
            free = true;
        } else if (key == "MemAvailable") {
            m.available = bytes;
        }
    });
    if (!total || !free)
        return core::Errc::bad_value;
    return m;
}

void parse_stat_cpus(std::string_view text, std::vector<CpuTimes>& out, std::size_t max_cpus)
{
    out.clear();
    while (!text.empty()) {
        std::string_view line = next_line(text);
        // "cpu" alone is the aggregate; "cpuN" are the CPUs. The cpu lines come first, but a
        // kernel is free to reorder, so every line is looked at.
        if (!line.starts_with("cpu") || line.size() < 4 || line[3] < '0' || line[3] > '9')
            continue;
        line.remove_prefix(3);
        const auto name_end = line.find_first_of(" \t");
        const auto index = parse_u64(line.substr(0, name_end));
        if (!index || *index >= max_cpus || name_end == std::string_view::npos)
            continue;
        line.remove_prefix(name_end);
        // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
        // already included in user and nice, so only the first eight count.
        std::array<std::uint64_t, 8> f{};
        std::size_t n = 0;
        bool ok = true;
        while (n < f.size()) {
            line = trim(line);
            if (line.empty())
                break;
            const auto end = line.find_first_of(" \t");
            const auto v = parse_u64(line.substr(0, end));
            if (!v) {
                ok = false;
                break;
            }
            f[n++] = *v;
            line.remove_prefix(end == std::string_view::npos ? line.size() : end);
        }
        // Kernels before 2.6.11 had four fields; fewer than that is not a cpu line.
        if (!ok || n < 4)
            continue;
        CpuTimes t;
        t.busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
        t.idle = f[3] + f[4];
        if (out.size() <= *index)
            out.resize(*index + 1);
        out[*index] = t;
    }
}

double cpu_utilization(const CpuTimes& before, const CpuTimes& now) noexcept
{
    if (now.busy < before.busy || now.idle < before.idle)
        return 0;
    // In double: the sum of two tick deltas cannot wrap around.
    const auto busy = static_cast<double>(now.busy - before.busy);
    const double total = busy + static_cast<double>(now.idle - before.idle);
    if (total == 0)
        return 0;
    return 100.0 * busy / total;
}

core::Result<ProcStatus> parse_status(std::string_view text)
{
    ProcStatus s;
    bool rss = false;
    for_each_size_field(text, [&](std::string_view key, std::uint64_t bytes) {
        if (key == "VmSize") {
            s.vm_size = bytes;
        } else if (key == "VmRSS") {
            s.vm_rss = bytes;
            rss = true;
        } else if (key == "VmData") {
            s.vm_data = bytes;
        } else if (key == "VmStk") {
            s.vm_stack = bytes;
        } else if (key == "VmExe") {
            s.vm_exe = bytes;
        } else if (key == "VmLib") {
            s.vm_lib = bytes;
        }
    });
    if (!rss)
        return core::Errc::bad_value;
    return s;
}

core::Result<ProcStat> parse_stat(std::string_view text)
{
    const auto paren = text.rfind(')');
    if (paren == std::string_view::npos)
        return core::Errc::bad_value;
    text.remove_prefix(paren + 1);
    // Fields after the command, counted from 0 = state (field 3 in proc(5)).
    constexpr std::size_t minflt = 7, majflt = 9, utime = 11, stime = 12, num_threads = 17, vsize = 20, rss = 21;
    ProcStat s;
    std::size_t i = 0;
    while (i <= rss) {
        text = trim(text);
        if (text.empty() || text.front() == '\n')
            return core::Errc::bad_value;
        const auto end = text.find_first_of(" \t\n");
        const std::string_view field = text.substr(0, end);
        text.remove_prefix(field.size());
        if (i == minflt || i == majflt || i == utime || i == stime || i == num_threads || i == vsize || i == rss) {
            const auto v = parse_u64(field);
            if (!v)
                return core::Errc::bad_value;
            std::uint64_t* target = i == minflt        ? &s.minor_faults
                                    : i == majflt      ? &s.major_faults
                                    : i == utime       ? &s.user_ticks
                                    : i == stime       ? &s.system_ticks
                                    : i == num_threads ? &s.threads
                                    : i == vsize       ? &s.virtual_bytes
                                                       : &s.resident_pages;
            *target = *v;
        }
        ++i;
    }
    return s;
}

core::Result<void> read_proc_file(const char* path, std::string& out)
{
    out.clear();
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return core::Errc::io_error;
    // /proc files report size 0, so read in chunks until EOF or the limit.
    core::Result<void> result;
    while (out.size() < max_proc_file_bytes) {
        const std::size_t old = out.size();
        const std::size_t chunk = std::min<std::size_t>(4096, max_proc_file_bytes - old);
        out.resize(old + chunk);
        const ssize_t n = ::read(fd, out.data() + old, chunk);
        if (n < 0 && errno == EINTR) {
            out.resize(old);
            continue;
        }
        if (n <= 0) {
            out.resize(old);
            if (n < 0)
                result = core::Errc::io_error;
            break;
        }
        out.resize(old + static_cast<std::size_t>(n));
    }
    ::close(fd);
    return result;
}

core::Result<std::size_t> count_directory_entries(const char* path)
{
    DIR* dir = ::opendir(path);
    if (dir == nullptr)
        return core::Errc::io_error;
    std::size_t n = 0;
    while (const dirent* e = ::readdir(dir)) {
        const std::string_view name = e->d_name;
        if (name != "." && name != "..")
            ++n;
    }
    ::closedir(dir);
    return n;
}

}  // namespace agent
