#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace core {

/// The command-line, environment and JSON-config-file options of one program (server, agent).
///
/// Each option writes into a target the caller owns; the target holds the default on entry and
/// must outlive `parse`. Priority: environment > flag > config file > default. An explicit
/// 0, false or empty value is honoured; an environment variable set to "" counts as unset.
///
/// Flags: every name may be written with one or two dashes, with its value as `-a=x` or `-a x`
/// (bools only as `-r` = true or `-r=false`, as with Go's flag package). Positional arguments
/// are refused. Values: strings as given; ints decimal within [min, max]; bools as Go's
/// ParseBool (1 t T TRUE true True 0 f F FALSE false False); seconds as a non-negative decimal
/// number of seconds ("300", "0.5") or a Go duration ("300ms", "10s", "1m30s", "1h"), rounded to
/// milliseconds. In the config file (a JSON object, at most 1 MiB): strings, integers, booleans,
/// and seconds as a number or a string in the forms above; null counts as absent; an unknown key
/// draws a warning and is ignored (forward compatible); a duplicate known key is an error.
class Options {
public:
    /// `program` starts every message; `summary` heads the help; `--version` prints
    /// "<program> <version>".
    Options(std::string program, std::string summary, std::string version);

    /// `names`: each accepted spelling without dashes, e.g. {"a", "address"} or {"crypto-key"};
    /// `env`: variable name or ""; `json_key`: config file key or "".
    void add_string(std::initializer_list<std::string_view> names, std::string_view env, std::string_view json_key,
                    std::string* target, std::string_view help);
    void add_int(std::initializer_list<std::string_view> names, std::string_view env, std::string_view json_key,
                 std::int64_t* target, std::string_view help, std::int64_t min, std::int64_t max);
    void add_bool(std::initializer_list<std::string_view> names, std::string_view env, std::string_view json_key,
                  bool* target, std::string_view help);
    void add_seconds(std::initializer_list<std::string_view> names, std::string_view env, std::string_view json_key,
                     std::chrono::milliseconds* target, std::string_view help);
    /// A string that must be one of `choices` (exact); anything else is refused like an
    /// unparsable value. The target's value on entry is the default.
    void add_choice(std::initializer_list<std::string_view> names, std::string_view env, std::string_view json_key,
                    std::string* target, std::initializer_list<std::string_view> choices, std::string_view help);
    /// The flag and variable naming the JSON config file (e.g. {"c", "config"}, "CONFIG");
    /// without it no file is read.
    void set_config_file_option(std::initializer_list<std::string_view> names, std::string_view env);

    /// Where help and version (`out`) and error lines (`err`) go; stdout and stderr by default.
    void set_streams(std::FILE* out, std::FILE* err) noexcept;

    /// What `main` should do now: exit with `code`.
    struct Exit {
        int code;
    };
    using Getenv = std::function<const char*(const char*)>;

    /// Reads argv, the process environment and the config file into the targets.
    /// nullopt: continue. `-h`/`--help`: usage to `out`, Exit{0}. `--version`: Exit{0}.
    /// Unknown flag, missing value, unparsable or out-of-range value in a flag or variable,
    /// positional argument: one line "<program>: <what>" to `err`, Exit{2}. Config file
    /// unreadable, too large, malformed, or a key of the wrong type or range: one line, Exit{1}.
    /// On an exit the targets may be partly assigned.
    std::optional<Exit> parse(int argc, const char* const* argv);
    /// The same with the environment read through `getenv` (tests).
    std::optional<Exit> parse(int argc, const char* const* argv, const Getenv& getenv);

private:
    enum class Type : std::uint8_t { string, integer, boolean, seconds };
    using Value = std::variant<std::string, std::int64_t, bool, std::chrono::milliseconds>;
    struct Option {
        std::vector<std::string> names;
        std::string env;
        std::string json_key;
        std::string help;
        Type type = Type::string;
        void* target = nullptr;
        std::int64_t min = 0;
        std::int64_t max = 0;
        std::string default_text;
        std::vector<std::string> choices;  ///< strings only: the accepted values (empty: any)
        std::optional<Value> from_flag;
        std::optional<Value> from_env;
        std::optional<Value> from_file;
    };

    void add(std::initializer_list<std::string_view> names, std::string_view env, std::string_view json_key,
             std::string_view help, Type type, void* target);
    /// Whether `text` is acceptable for the string option `o`; else the reason in `why`.
    static bool allowed(const Option& o, std::string_view text, std::string& why);
    /// Parses flag or variable text; on failure returns nullopt with the reason in `why`.
    std::optional<Value> parse_text(const Option& o, std::string_view text, std::string& why) const;
    Option* find(std::string_view name);
    std::optional<Exit> parse_argv(int argc, const char* const* argv, std::string& config_flag);
    std::optional<Exit> read_config_file(const std::string& path);
    std::optional<Exit> fail(int code, std::string_view what) const;
    void print_help() const;

    std::string program_;
    std::string summary_;
    std::string version_;
    std::vector<Option> options_;
    std::vector<std::string> config_names_;
    std::string config_env_;
    std::FILE* out_ = stdout;
    std::FILE* err_ = stderr;
};

}  // namespace core
