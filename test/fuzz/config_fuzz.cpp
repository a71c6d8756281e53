// Options::parse on arbitrary flags and config file contents. The input is argv words separated
// by '\n', then a '\x01', then the config file (handed over through CONFIG as a memfd).
// Invariants: no crash; exit codes 0, 1 or 2 only; a usage error is exactly one line; on success
// every target holds a value its option allows.
#include "core/config.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view input{reinterpret_cast<const char*>(data), size};
    const std::size_t split = input.find('\x01');
    const std::string_view flags = input.substr(0, split);
    const std::string_view file = split == std::string_view::npos ? std::string_view{} : input.substr(split + 1);

    std::vector<std::string> words{"prog"};
    for (std::size_t start = 0; start <= flags.size();) {
        std::size_t end = flags.find('\n', start);
        if (end == std::string_view::npos)
            end = flags.size();
        words.emplace_back(flags.substr(start, end - start));
        start = end + 1;
    }
    for (const std::string& w : words)
        if (w.find('/') != std::string::npos || w.find('\0') != std::string::npos)
            return 0;  // keep the fuzzer away from real files such as /dev/stdin
    std::vector<const char*> argv;
    for (const std::string& w : words)
        argv.push_back(w.c_str());

    const int fd = ::memfd_create("config", 0);
    if (fd < 0 || ::write(fd, file.data(), file.size()) != static_cast<ssize_t>(file.size()))
        std::abort();
    const std::string path = "/proc/self/fd/" + std::to_string(fd);

    std::string address = "localhost:8080";
    std::int64_t limit = 1;
    bool restore = true;
    std::chrono::milliseconds interval{300'000};
    core::Options o{"prog", "fuzz", "0"};
    o.add_string({"a", "address"}, "ADDRESS", "address", &address, "address");
    o.add_int({"l"}, "", "rate_limit", &limit, "limit", 1, 64);
    o.add_bool({"r"}, "", "restore", &restore, "restore");
    o.add_seconds({"i"}, "", "store_interval", &interval, "interval");
    o.set_config_file_option({"c"}, "CONFIG");

    char* err_data = nullptr;
    std::size_t err_size = 0;
    std::FILE* out = std::fopen("/dev/null", "w");
    std::FILE* err = open_memstream(&err_data, &err_size);
    o.set_streams(out, err);
    const bool with_file = !file.empty();
    auto exit = o.parse(static_cast<int>(argv.size()), argv.data(),
                        [&](const char* name) -> const char* { return with_file && std::string_view{name} == "CONFIG" ? path.c_str() : nullptr; });
    std::fclose(out);
    std::fclose(err);
    const std::string_view errors{err_data, err_size};
    if (exit) {
        if (exit->code != 0 && exit->code != 1 && exit->code != 2)
            std::abort();
        if (exit->code == 2 && (errors.empty() || errors.find('\n') != errors.size() - 1))
            std::abort();
    } else if (limit < 1 || limit > 64 || interval.count() < 0) {
        std::abort();
    }
    std::free(err_data);
    ::close(fd);
    return 0;
}
