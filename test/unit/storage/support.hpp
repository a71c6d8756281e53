#pragma once

#include "support/run.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

namespace test {

/// A fresh directory under the system temporary directory, removed with its content.
class TempDir {
public:
    TempDir()
    {
        std::string pattern = (std::filesystem::temp_directory_path() / "metrics-storage-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

/// test::run for results that are not default-constructible (core::Result), which co_spawn's
/// completion signature needs: the value travels through a std::optional.
template <class T>
T run_result(asio::awaitable<T> op)
{
    auto wrapped = [](asio::awaitable<T> o) -> asio::awaitable<std::optional<T>> { co_return co_await std::move(o); };
    return std::move(*run(wrapped(std::move(op))));
}

inline std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const std::string& path, const std::string& body)
{
    std::ofstream(path, std::ios::binary | std::ios::trunc) << body;
}

}  // namespace test
