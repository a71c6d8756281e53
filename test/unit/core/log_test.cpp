#include "core/log.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include <unistd.h>

namespace {

using core::log::Field;
using core::log::Format;
using core::log::Level;

/// Runs `f` with stderr sent to a temporary file and returns what it wrote; restores the log
/// settings and stderr after.
template <class F>
std::string captured(F&& f)
{
    std::FILE* tmp = std::tmpfile();
    REQUIRE(tmp != nullptr);
    std::fflush(stderr);
    const int saved = ::dup(STDERR_FILENO);
    REQUIRE(::dup2(::fileno(tmp), STDERR_FILENO) == STDERR_FILENO);
    const Format format = core::log::format();
    const Level level = core::log::threshold();
    f();
    core::log::set_format(format);
    core::log::set_threshold(level);
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    std::string text;
    std::rewind(tmp);
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, tmp)) > 0;)
        text.append(buf, n);
    std::fclose(tmp);
    return text;
}

/// The line without its timestamp (text: the first 25 characters; JSON: the "ts" member).
std::string untimed(const std::string& line)
{
    if (line.starts_with("{\"ts\":\""))
        return "{" + line.substr(line.find("\",") + 2);
    return line.size() > 25 ? line.substr(25) : line;
}

}  // namespace

TEST_CASE("levels and formats parse from their exact names")
{
    CHECK(core::log::parse_level("debug") == Level::debug);
    CHECK(core::log::parse_level("error") == Level::error);
    CHECK_FALSE(core::log::parse_level("INFO"));
    CHECK_FALSE(core::log::parse_level("info "));
    CHECK(core::log::parse_format("json") == Format::json);
    CHECK_FALSE(core::log::parse_format(""));
}

TEST_CASE("a text line carries the time, level, message and fields")
{
    const std::string line = captured([] {
        REQUIRE(core::log::configure("text", "info"));
        const Field fields[] = {Field::string("peer", "127.0.0.1"), Field::integer("status", 200)};
        core::log::write(Level::warn, "slow request", fields);
    });
    CHECK(line.size() == 25 + std::string_view{"warn  slow request peer=127.0.0.1 status=200\n"}.size());
    CHECK(line[4] == '-');
    CHECK(line[23] == 'Z');
    CHECK(untimed(line) == "warn  slow request peer=127.0.0.1 status=200\n");
}

TEST_CASE("a JSON line is one object with ts, level, msg and the fields, strings escaped")
{
    const std::string line = captured([] {
        REQUIRE(core::log::configure("json", ""));
        const Field fields[] = {Field::string("target", "/value/gauge/a\"b\n"), Field::integer("bytes", -1)};
        core::log::write(Level::info, "request \\ done", fields);
    });
    CHECK(line.starts_with("{\"ts\":\"20"));
    CHECK(untimed(line) == "{\"level\":\"info\",\"msg\":\"request \\\\ done\",\"target\":\"/value/gauge/a\\\"b\\u000a\",\"bytes\":-1}\n");
}

TEST_CASE("configure refuses a bad value and changes nothing")
{
    captured([] {
        REQUIRE(core::log::configure("text", "warn"));
        CHECK_FALSE(core::log::configure("json", "verbose"));
        CHECK(core::log::format() == Format::text);
        CHECK(core::log::threshold() == Level::warn);
        CHECK_FALSE(core::log::configure("xml", "debug"));
        CHECK(core::log::threshold() == Level::warn);
    });
}

TEST_CASE("messages below the threshold are dropped, errors always pass")
{
    const std::string text = captured([] {
        REQUIRE(core::log::configure("text", "error"));
        core::log::info("dropped {}", 1);
        core::log::warn("dropped {}", 2);
        core::log::error("kept {}", 3);
    });
    CHECK(untimed(text) == "error kept 3\n");
}
