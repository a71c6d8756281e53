#include "core/config.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using core::Options;

namespace {

// The options of a small program, with their defaults.
struct Settings {
    std::string address = "localhost:8080";
    std::int64_t limit = 1;
    bool restore = true;
    std::chrono::milliseconds interval = 300s;
    std::string file = "/tmp/db.json";
    std::string format = "text";
};

// Runs Options::parse over `args` with a fake environment, capturing stdout and stderr.
struct Run {
    std::map<std::string, std::string> env;
    Settings s;
    std::string out;
    std::string err;

    std::optional<int> operator()(std::vector<const char*> args)
    {
        Options o{"prog", "Does things.", "1.2.3"};
        o.add_string({"a", "address"}, "ADDRESS", "address", &s.address, "listen address");
        o.add_int({"l", "rate-limit"}, "RATE_LIMIT", "rate_limit", &s.limit, "senders", 1, 64);
        o.add_bool({"r", "restore"}, "RESTORE", "restore", &s.restore, "load the snapshot");
        o.add_seconds({"i"}, "STORE_INTERVAL", "store_interval", &s.interval, "seconds between snapshots");
        o.add_string({"f"}, "FILE_STORAGE_PATH", "store_file", &s.file, "snapshot file");
        o.add_choice({"log-format"}, "LOG_FORMAT", "log_format", &s.format, {"", "text", "json"}, "line format");
        o.set_config_file_option({"c", "config"}, "CONFIG");

        char* out_data = nullptr;
        char* err_data = nullptr;
        std::size_t out_size = 0;
        std::size_t err_size = 0;
        std::FILE* out_stream = open_memstream(&out_data, &out_size);
        std::FILE* err_stream = open_memstream(&err_data, &err_size);
        o.set_streams(out_stream, err_stream);
        args.insert(args.begin(), "prog");
        auto exit = o.parse(static_cast<int>(args.size()), args.data(), [this](const char* name) -> const char* {
            auto it = env.find(name);
            return it == env.end() ? nullptr : it->second.c_str();
        });
        std::fclose(out_stream);
        std::fclose(err_stream);
        out.assign(out_data, out_size);
        err.assign(err_data, err_size);
        std::free(out_data);
        std::free(err_data);
        if (exit)
            return exit->code;
        return std::nullopt;
    }
};

// A config file that lives as long as the object.
class TempFile {
public:
    explicit TempFile(std::string_view content)
    {
        int fd = ::mkstemp(path_.data());
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
        ::close(fd);
    }
    ~TempFile() { std::remove(path_.c_str()); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const char* path() const { return path_.c_str(); }

private:
    std::string path_ = "/tmp/config_test_XXXXXX";
};

}  // namespace

TEST_CASE("nothing given keeps the defaults")
{
    Run run;
    CHECK(run({}) == std::nullopt);
    CHECK(run.s.address == "localhost:8080");
    CHECK(run.s.limit == 1);
    CHECK(run.s.restore);
    CHECK(run.s.interval == 300s);
    CHECK(run.err.empty());
}

TEST_CASE("flags take every spelling")
{
    for (auto args : {std::vector<const char*>{"-a=h:1"}, {"-a", "h:1"}, {"--a=h:1"}, {"--address=h:1"},
                      {"--address", "h:1"}, {"-address", "h:1"}}) {
        Run run;
        CAPTURE(args[0]);
        CHECK(run(args) == std::nullopt);
        CHECK(run.s.address == "h:1");
    }
    SUBCASE("a value may look like a flag or contain '='")
    {
        Run run;
        CHECK(run({"-a", "-x", "-f=a=b"}) == std::nullopt);
        CHECK(run.s.address == "-x");
        CHECK(run.s.file == "a=b");
    }
    SUBCASE("the last occurrence wins")
    {
        Run run;
        CHECK(run({"-l=2", "-l", "3"}) == std::nullopt);
        CHECK(run.s.limit == 3);
    }
}

TEST_CASE("boolean flags are bare or take =value")
{
    Run run;
    run.s.restore = false;
    CHECK(run({"-r"}) == std::nullopt);
    CHECK(run.s.restore);
    CHECK(run({"-r=false"}) == std::nullopt);
    CHECK_FALSE(run.s.restore);
    CHECK(run({"--restore=T"}) == std::nullopt);
    CHECK(run.s.restore);
    CHECK(run({"-r=0"}) == std::nullopt);
    CHECK_FALSE(run.s.restore);

    SUBCASE("a separate word is not a boolean's value")
    {
        Run other;
        CHECK(other({"-r", "false"}) == 2);
        CHECK(other.err == "prog: unexpected argument \"false\"\n");
    }
    SUBCASE("only Go's boolean words are accepted")
    {
        Run other;
        CHECK(other({"-r=yes"}) == 2);
        CHECK(other.err == "prog: invalid value \"yes\" for flag -r: not a boolean (true or false)\n");
    }
}

TEST_CASE("the environment beats flags, flags beat the file, the file beats defaults")
{
    TempFile file{R"({"address":"file:1","rate_limit":3,"restore":false,"store_interval":7,"store_file":"/f"})"};

    SUBCASE("file over default")
    {
        Run run;
        CHECK(run({"-c", file.path()}) == std::nullopt);
        CHECK(run.s.address == "file:1");
        CHECK(run.s.limit == 3);
        CHECK_FALSE(run.s.restore);
        CHECK(run.s.interval == 7s);
        CHECK(run.s.file == "/f");
    }
    SUBCASE("flag over file")
    {
        Run run;
        CHECK(run({"-a=flag:1", "-config", file.path(), "-l=4", "-r=true", "-i=8", "-f=/g"}) == std::nullopt);
        CHECK(run.s.address == "flag:1");
        CHECK(run.s.limit == 4);
        CHECK(run.s.restore);
        CHECK(run.s.interval == 8s);
        CHECK(run.s.file == "/g");
    }
    SUBCASE("env over file")
    {
        Run run;
        run.env = {{"ADDRESS", "env:1"}, {"RATE_LIMIT", "5"}, {"RESTORE", "true"}, {"STORE_INTERVAL", "9"},
                   {"FILE_STORAGE_PATH", "/e"}};
        CHECK(run({"--config=", "-c", file.path()}) == std::nullopt);
        CHECK(run.s.address == "env:1");
        CHECK(run.s.limit == 5);
        CHECK(run.s.restore);
        CHECK(run.s.interval == 9s);
        CHECK(run.s.file == "/e");
    }
    SUBCASE("env over flag")
    {
        Run run;
        run.env = {{"ADDRESS", "env:1"}, {"RATE_LIMIT", "5"}, {"RESTORE", "false"}};
        CHECK(run({"-a=flag:1", "-l=4", "-r"}) == std::nullopt);
        CHECK(run.s.address == "env:1");
        CHECK(run.s.limit == 5);
        CHECK_FALSE(run.s.restore);
    }
    SUBCASE("all three")
    {
        Run run;
        run.env = {{"ADDRESS", "env:1"}, {"CONFIG", file.path()}};
        CHECK(run({"-a=flag:1", "-l=4"}) == std::nullopt);
        CHECK(run.s.address == "env:1");
        CHECK(run.s.limit == 4);
        CHECK(run.s.interval == 7s);
    }
}

TEST_CASE("explicit zero, false and empty values are honoured")
{
    SUBCASE("from flags")
    {
        Run run;
        CHECK(run({"-i=0", "-r=false", "-f="}) == std::nullopt);
        CHECK(run.s.interval == 0ms);
        CHECK_FALSE(run.s.restore);
        CHECK(run.s.file.empty());
    }
    SUBCASE("from the environment")
    {
        Run run;
        run.env = {{"STORE_INTERVAL", "0"}, {"RESTORE", "false"}};
        CHECK(run({}) == std::nullopt);
        CHECK(run.s.interval == 0ms);
        CHECK_FALSE(run.s.restore);
    }
    SUBCASE("from the file")
    {
        TempFile file{R"({"store_interval":0,"restore":false,"store_file":""})"};
        Run run;
        CHECK(run({"-c", file.path()}) == std::nullopt);
        CHECK(run.s.interval == 0ms);
        CHECK_FALSE(run.s.restore);
        CHECK(run.s.file.empty());
    }
}

TEST_CASE("an environment variable set to the empty string counts as unset")
{
    Run run;
    run.env = {{"ADDRESS", ""}, {"RATE_LIMIT", ""}, {"CONFIG", ""}};
    CHECK(run({"-a=flag:1"}) == std::nullopt);
    CHECK(run.s.address == "flag:1");
    CHECK(run.s.limit == 1);
}

TEST_CASE("seconds take plain numbers and Go durations")
{
    const std::pair<const char*, std::chrono::milliseconds> cases[] = {
        {"300", 300s}, {"0", 0ms}, {"1.5", 1500ms}, {".5", 500ms}, {"300ms", 300ms}, {"10s", 10s},
        {"1m30s", 90s}, {"1h", 3600s}, {"1.5h", 5400s}, {"2m0.5s", 120500ms}, {"1500us", 2ms},
        {"1500\xc2\xb5s", 2ms}, {"2000000ns", 2ms}, {"0s", 0ms}};
    for (auto [text, expected] : cases) {
        const char* const input = text;  // clang 14 cannot capture a structured binding (CAPTURE's lambda)
        CAPTURE(input);
        Run run;
        CHECK(run({"-i", text}) == std::nullopt);
        CHECK(run.s.interval == expected);
    }
    for (const char* bad : {"", "-5", "+5", "10x", "s", "1m30", "1 s", "1e3", "1..5s", "99999999999h"}) {
        CAPTURE(bad);
        Run run;
        CHECK(run({"-i", bad}) == 2);
    }
    SUBCASE("in the config file as a number of seconds or a string")
    {
        TempFile number{R"({"store_interval":2.5})"};
        TempFile text{R"({"store_interval":"1m"})"};
        Run run;
        CHECK(run({"-c", number.path()}) == std::nullopt);
        CHECK(run.s.interval == 2500ms);
        CHECK(run({"-c", text.path()}) == std::nullopt);
        CHECK(run.s.interval == 60s);
    }
}

TEST_CASE("usage errors exit with 2 and one line")
{
    const std::pair<std::vector<const char*>, const char*> cases[] = {
        {{"-z"}, "prog: flag provided but not defined: -z\n"},
        {{"--zzz=1"}, "prog: flag provided but not defined: --zzz\n"},
        {{"-a"}, "prog: flag needs an argument: -a\n"},
        {{"-c"}, "prog: flag needs an argument: -c\n"},
        {{"-l=x"}, "prog: invalid value \"x\" for flag -l: not an integer\n"},
        {{"-l", "0"}, "prog: invalid value \"0\" for flag -l: out of range [1, 64]\n"},
        {{"-l=65"}, "prog: invalid value \"65\" for flag -l: out of range [1, 64]\n"},
        {{"-l=99999999999999999999"}, "prog: invalid value \"99999999999999999999\" for flag -l: not an integer\n"},
        {{"extra"}, "prog: unexpected argument \"extra\"\n"},
        {{"-a=x", "--", "extra"}, "prog: unexpected argument \"extra\"\n"},
        {{"-"}, "prog: unexpected argument \"-\"\n"},
        {{"---a=x"}, "prog: bad flag syntax: ---a=x\n"},
        {{"-=x"}, "prog: bad flag syntax: -=x\n"},
    };
    for (const auto& [args, message] : cases) {
        const auto& first = args[0];  // clang 14 cannot capture a structured binding (CAPTURE's lambda)
        CAPTURE(first);
        Run run;
        CHECK(run(args) == 2);
        CHECK(run.err == message);
        CHECK(run.out.empty());
    }
    SUBCASE("a bad environment value too")
    {
        Run run;
        run.env = {{"RATE_LIMIT", "many"}};
        CHECK(run({}) == 2);
        CHECK(run.err == "prog: invalid value \"many\" for environment variable RATE_LIMIT: not an integer\n");
    }
    SUBCASE("a trailing -- is fine")
    {
        Run run;
        CHECK(run({"-a=x", "--"}) == std::nullopt);
    }
}

TEST_CASE("help lists every option and exits with 0")
{
    for (const char* flag : {"-h", "--help", "-help"}) {
        Run run;
        CHECK(run({"-a=x", flag, "-z"}) == 0);
        CHECK(run.err.empty());
        for (const char* word : {"prog 1.2.3", "Does things.", "-a, --address", "ADDRESS", "\"address\"",
                                 "\"localhost:8080\"", "--rate-limit", "range [1, 64]", "RESTORE", "default true",
                                 "default 300s", "-c, --config", "CONFIG", "--version"}) {
            CAPTURE(word);
            CHECK(run.out.find(word) != std::string::npos);
        }
    }
}

TEST_CASE("--version prints the program and version")
{
    Run run;
    CHECK(run({"--version"}) == 0);
    CHECK(run.out == "prog 1.2.3\n");
}

TEST_CASE("config file problems exit with 1 and one line")
{
    Run run;
    CHECK(run({"-c", "/nonexistent/config.json"}) == 1);
    CHECK(run.err == "prog: config file /nonexistent/config.json: No such file or directory\n");

    for (const char* content : {"", "{", "[]", "5", R"({"address":1})", R"({"rate_limit":"2"})", R"({"rate_limit":1.5})",
                                R"({"rate_limit":0})", R"({"restore":"true"})", R"({"store_interval":-1})",
                                R"({"store_interval":"soon"})", R"({"store_interval":[1]})", R"({"address":"a","address":"b"})",
                                R"({"address":"a"} x)"}) {
        CAPTURE(content);
        TempFile file{content};
        Run bad;
        CHECK(bad({"-c", file.path()}) == 1);
        CHECK(bad.err.starts_with(std::string{"prog: config file "} + file.path()));
        CHECK(bad.err.find('\n') == bad.err.size() - 1);
    }
    SUBCASE("a file over 1 MiB is refused")
    {
        TempFile big{R"({"address":")" + std::string(1 << 20, 'a') + R"("})"};
        Run bad;
        CHECK(bad({"-c", big.path()}) == 1);
    }
}

TEST_CASE("unknown config keys draw a warning, null keys count as absent")
{
    TempFile file{R"({"future_option":{"x":[1,2]},"address":null,"rate_limit":2})"};
    Run run;
    CHECK(run({"-config=", "--config", file.path()}) == std::nullopt);
    CHECK(run.s.address == "localhost:8080");
    CHECK(run.s.limit == 2);
    CHECK(run.err.find("unknown key \"future_option\"") != std::string::npos);
}

TEST_CASE("a choice takes only its listed values, from every source")
{
    Run run;
    CHECK(run({"--log-format=json"}) == std::nullopt);
    CHECK(run.s.format == "json");

    Run empty;
    CHECK(empty({"--log-format="}) == std::nullopt);  // "" is listed: explicitly not set
    CHECK(empty.s.format.empty());

    Run bad_flag;
    CHECK(bad_flag({"--log-format=xml"}) == 2);
    CHECK(bad_flag.err == "prog: invalid value \"xml\" for flag -log-format: not one of text, json\n");

    Run bad_env;
    bad_env.env["LOG_FORMAT"] = "JSON";  // exact: case matters
    CHECK(bad_env({}) == 2);
    CHECK(bad_env.s.format == "text");

    TempFile file{R"({"log_format": "yaml"})"};
    Run bad_file;
    CHECK(bad_file({"-c", file.path()}) == 1);
    CHECK(bad_file.err.find("not one of text, json") != std::string::npos);

    Run help;
    CHECK(help({"--help"}) == 0);
    CHECK(help.out.find("--log-format <text|json>") != std::string::npos);
}
