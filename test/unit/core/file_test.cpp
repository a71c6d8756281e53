#include "core/file.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>

#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

class ScratchDir {
public:
    ScratchDir()
    {
        std::string pattern = (fs::temp_directory_path() / "metrics-file-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~ScratchDir()
    {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

std::string contents(const std::string& path)
{
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("appending creates a regular file and refuses links, FIFOs and directories without blocking")
{
    using core::file::open_regular_for_append;
    ScratchDir dir;
    const std::string path = dir.file("audit.log");
    {
        auto log = open_regular_for_append(path);
        REQUIRE(log);
        REQUIRE(core::file::write_all(log.fd.get(), "one\n"));
    }
    {
        auto log = open_regular_for_append(path);
        REQUIRE(log);
        REQUIRE(core::file::write_all(log.fd.get(), "two\n"));
    }
    CHECK(contents(path) == "one\ntwo\n");
    CHECK(fs::status(path).permissions() == (fs::perms::owner_read | fs::perms::owner_write));

    const std::string victim = dir.file("victim");
    std::ofstream(victim) << "precious";
    fs::create_symlink(victim, dir.file("link"));
    auto linked = open_regular_for_append(dir.file("link"));
    CHECK_FALSE(linked);
    CHECK(linked.error == "a symbolic link, which is not followed");
    CHECK(contents(victim) == "precious");

    REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
    CHECK_FALSE(open_regular_for_append(dir.file("fifo")));  // no reader: ENXIO at once

    fs::create_directory(dir.file("dir"));
    CHECK_FALSE(open_regular_for_append(dir.file("dir")));
}

TEST_CASE("reading refuses what is not a regular file and reports a missing one as missing")
{
    using core::file::open_regular_for_read;
    ScratchDir dir;
    auto missing = open_regular_for_read(dir.file("absent"));
    CHECK_FALSE(missing);
    CHECK(missing.missing);

    REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
    auto fifo = open_regular_for_read(dir.file("fifo"));
    CHECK_FALSE(fifo);
    CHECK_FALSE(fifo.missing);
    CHECK(fifo.error == "a FIFO, not a regular file");

    std::ofstream(dir.file("plain")) << "x";
    auto plain = open_regular_for_read(dir.file("plain"));
    REQUIRE(plain);
    char c = 0;
    CHECK(::read(plain.fd.get(), &c, 1) == 1);
    CHECK(c == 'x');
}

TEST_CASE("temporary files get fresh private names beside their target")
{
    ScratchDir dir;
    const std::string target = dir.file("db.json");
    std::set<std::string> names;
    for (int i = 0; i < 20; ++i) {
        auto t = core::file::create_temp_beside(target);
        REQUIRE(t.file);
        CHECK(t.path.starts_with(target + ".tmp."));
        CHECK(t.path.size() == target.size() + 11);
        CHECK(fs::status(t.path).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
        names.insert(t.path);
    }
    CHECK(names.size() == 20);
    CHECK(core::file::directory_of(target) == fs::path(target).parent_path().string());
    CHECK(core::file::directory_of("db.json") == ".");
}
