#include "core/config.hpp"

#include "core/number.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace core {

namespace {

constexpr std::size_t max_config_file_bytes = 1 << 20;
// Durations beyond a century are typos, and keep every conversion far from overflow.
constexpr double max_duration_ms = 100.0 * 365 * 24 * 3600 * 1000;

std::optional<bool> parse_bool(std::string_view s) noexcept
{
    for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"})
        if (s == t)
            return true;
    for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"})
        if (s == f)
            return false;
    return std::nullopt;
}

// A non-negative decimal number at the front of `s` ("10", "1.5", ".5"), consumed.
std::optional<double> take_decimal(std::string_view& s) noexcept
{
    std::size_t n = 0;
    std::size_t digits = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9')
        ++n, ++digits;
    if (n < s.size() && s[n] == '.')
        for (++n; n < s.size() && s[n] >= '0' && s[n] <= '9'; ++n)
            ++digits;
    if (digits == 0)
        return std::nullopt;
    Result<double> v = parse_gauge(s.substr(0, n));
    s.remove_prefix(n);
    if (!v)
        return std::nullopt;
    return *v;
}

std::optional<std::chrono::milliseconds> to_milliseconds(double ms) noexcept
{
    if (!(ms >= 0 && ms <= max_duration_ms))
        return std::nullopt;
    return std::chrono::milliseconds{std::llround(ms)};
}

// "300" or "0.5" (seconds) or a Go duration: a sequence of decimal numbers each with a unit
// (ns, us, µs, ms, s, m, h), e.g. "1m30s". No sign: negative intervals make no sense here.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) noexcept
{
    if (s == "0")
        return std::chrono::milliseconds{0};
    std::string_view rest = s;
    std::optional<double> first = take_decimal(rest);
    if (!first)
        return std::nullopt;
    if (rest.empty())
        return to_milliseconds(*first * 1000);
    static constexpr struct {
        std::string_view name;
        double ms;
    } units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"\xce\xbcs", 1e-3}, {"ms", 1},
                 {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}};
    double total = 0;
    std::optional<double> number = first;
    while (true) {
        std::size_t n = 0;
        while (n < rest.size() && !(rest[n] >= '0' && rest[n] <= '9') && rest[n] != '.')
            ++n;
        const std::string_view unit = rest.substr(0, n);
        const auto* u = std::find_if(std::begin(units), std::end(units), [&](const auto& x) { return x.name == unit; });
        if (u == std::end(units))
            return std::nullopt;
        total += *number * u->ms;
        if (!(total <= max_duration_ms))
            return std::nullopt;
        rest.remove_prefix(n);
        if (rest.empty())
            return to_milliseconds(total);
        number = take_decimal(rest);
        if (!number)
            return std::nullopt;
    }
}

std::string format_duration(std::chrono::milliseconds d)
{
    if (d.count() % 1000 == 0)
        return fmt::format("{}s", d.count() / 1000);
    return fmt::format("{}ms", d.count());
}

std::string dashed(std::string_view name) { return fmt::format("{}{}", name.size() == 1 ? "-" : "--", name); }

}  // namespace

Options::Options(std::string program, std::string summary, std::string version)
    : program_(std::move(program)), summary_(std::move(summary)), version_(std::move(version))
{
}

void Options::add(std::initializer_list<std::string_view> names, std::string_view env, std::string_view json_key,
                  std::string_view help, Type type, void* target)
{
    Option o;
    o.env = env;
    o.json_key = json_key;
    o.help = help;
    o.type = type;
    o.target = target;
    for (std::string_view n : names)
        o.names.emplace_back(n);
    options_.push_back(std::move(o));
}

void Options::add_string(std::initializer_list<std::string_view> names, std::string_view env,
                         std::string_view json_key, std::string* target, std::string_view help)
{
    add(names, env, json_key, help, Type::string, target);
    options_.back().default_text = fmt::format("\"{}\"", *target);
}

void Options::add_int(std::initializer_list<std::string_view> names, std::string_view env, std::string_view json_key,
                      std::int64_t* target, std::string_view help, std::int64_t min, std::int64_t max)
{
    add(names, env, json_key, help, Type::integer, target);
    options_.back().min = min;
    options_.back().max = max;
    options_.back().default_text = fmt::format("{}", *target);
}

void Options::add_bool(std::initializer_list<std::string_view> names, std::string_view env, std::string_view json_key,
                       bool* target, std::string_view help)
{
    add(names, env, json_key, help, Type::boolean, target);
    options_.back().default_text = *target ? "true" : "false";
}

void Options::add_seconds(std::initializer_list<std::string_view> names, std::string_view env,
                          std::string_view json_key, std::chrono::milliseconds* target, std::string_view help)
{
    add(names, env, json_key, help, Type::seconds, target);
    options_.back().default_text = format_duration(*target);
}

void Options::add_choice(std::initializer_list<std::string_view> names, std::string_view env,
                         std::string_view json_key, std::string* target,
                         std::initializer_list<std::string_view> choices, std::string_view help)
{
    add_string(names, env, json_key, target, help);
    for (std::string_view c : choices)
        options_.back().choices.emplace_back(c);
}

namespace {

/// The choices worth naming in help and errors (an accepted "" means "not set").
std::vector<std::string_view> named_choices(const std::vector<std::string>& choices)
{
    std::vector<std::string_view> named;
    for (const std::string& c : choices)
        if (!c.empty())
            named.emplace_back(c);
    return named;
}

}  // namespace

bool Options::allowed(const Option& o, std::string_view text, std::string& why)
{
    if (o.choices.empty() || std::find(o.choices.begin(), o.choices.end(), text) != o.choices.end())
        return true;
    why = fmt::format("not one of {}", fmt::join(named_choices(o.choices), ", "));
    return false;
}

void Options::set_config_file_option(std::initializer_list<std::string_view> names, std::string_view env)
{
    config_names_.assign(names.begin(), names.end());
    config_env_ = env;
}

void Options::set_streams(std::FILE* out, std::FILE* err) noexcept
{
    out_ = out;
    err_ = err;
}

std::optional<Options::Value> Options::parse_text(const Option& o, std::string_view text, std::string& why) const
{
    switch (o.type) {
    case Type::string:
        if (!allowed(o, text, why))
            return std::nullopt;
        return Value{std::string{text}};
    case Type::integer: {
        Result<std::int64_t> v = parse_counter(text);
        if (!v) {
            why = "not an integer";
            return std::nullopt;
        }
        if (*v < o.min || *v > o.max) {
            why = fmt::format("out of range [{}, {}]", o.min, o.max);
            return std::nullopt;
        }
        return Value{*v};
    }
    case Type::boolean:
        if (auto b = parse_bool(text))
            return Value{*b};
        why = "not a boolean (true or false)";
        return std::nullopt;
    case Type::seconds:
        if (auto d = parse_duration(text))
            return Value{*d};
        why = "not a duration (seconds, or like 500ms, 10s, 1m30s)";
        return std::nullopt;
    }
    return std::nullopt;
}

Options::Option* Options::find(std::string_view name)
{
    for (Option& o : options_)
        if (std::find(o.names.begin(), o.names.end(), name) != o.names.end())
            return &o;
    return nullptr;
}

std::optional<Options::Exit> Options::fail(int code, std::string_view what) const
{
    fmt::print(err_, "{}: {}\n", program_, what);
    std::fflush(err_);
    return Exit{code};
}

std::optional<Options::Exit> Options::parse_argv(int argc, const char* const* argv, std::string& config_flag)
{
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--") {
            if (i + 1 < argc)
                return fail(2, fmt::format("unexpected argument \"{}\"", argv[i + 1]));
            break;
        }
        if (arg.size() < 2 || arg[0] != '-')
            return fail(2, fmt::format("unexpected argument \"{}\"", arg));
        std::string_view name = arg.substr(arg[1] == '-' ? 2 : 1);
        std::optional<std::string_view> value;
        if (auto eq = name.find('='); eq != std::string_view::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        if (name.empty() || name[0] == '-' || name[0] == '=')
            return fail(2, fmt::format("bad flag syntax: {}", arg));
        const bool is_config = std::find(config_names_.begin(), config_names_.end(), name) != config_names_.end();
        Option* o = is_config ? nullptr : find(name);
        if (o == nullptr && !is_config) {
            if (name == "h" || name == "help") {
                print_help();
                return Exit{0};
            }
            if (name == "version") {
                fmt::print(out_, "{} {}\n", program_, version_);
                std::fflush(out_);
                return Exit{0};
            }
            return fail(2, fmt::format("flag provided but not defined: {}", arg.substr(0, arg.find('='))));
        }
        if (!value && o != nullptr && o->type == Type::boolean)
            value = "true";  // a bare boolean flag, as in Go; "-r false" is not a value
        if (!value) {
            if (i + 1 == argc)
                return fail(2, fmt::format("flag needs an argument: -{}", name));
            value = argv[++i];
        }
        if (is_config) {
            config_flag = *value;
            continue;
        }
        std::string why;
        o->from_flag = parse_text(*o, *value, why);
        if (!o->from_flag)
            return fail(2, fmt::format("invalid value \"{}\" for flag -{}: {}", *value, name, why));
    }
    return std::nullopt;
}

std::optional<Options::Exit> Options::read_config_file(const std::string& path)
{
    auto fail_file = [&](std::string_view why) { return fail(1, fmt::format("config file {}: {}", path, why)); };

    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f{std::fopen(path.c_str(), "rb"), &std::fclose};
    if (!f)
        return fail_file(std::strerror(errno));
    std::string text;
    char chunk[16384];
    while (std::size_t n = std::fread(chunk, 1, sizeof chunk, f.get())) {
        text.append(chunk, n);
        if (text.size() > max_config_file_bytes)
            return fail_file(fmt::format("larger than {} bytes", max_config_file_bytes));
    }
    if (std::ferror(f.get()))
        return fail_file(std::strerror(errno));

    simdjson::dom::parser parser;
    simdjson::dom::object object;
    if (auto e = parser.parse(simdjson::padded_string{text}).get_object().get(object))
        return fail_file(e == simdjson::INCORRECT_TYPE ? "not a JSON object" : simdjson::error_message(e));
    for (auto [key, value] : object) {
        // By copy: clang 14 cannot capture a structured binding (C++20 allows it, P1091).
        auto it = std::find_if(options_.begin(), options_.end(), [k = std::string_view{key}](const Option& o) {
            return !o.json_key.empty() && o.json_key == k;
        });
        if (it == options_.end()) {
            fmt::print(err_, "{}: config file {}: unknown key \"{}\" ignored\n", program_, path, key);
            continue;
        }
        Option& o = *it;
        if (o.from_file)
            return fail_file(fmt::format("duplicate key \"{}\"", key));
        if (value.is_null())
            continue;
        std::string why;
        switch (o.type) {
        case Type::string:
            if (!value.is_string())
                why = "must be a string";
            else if (std::string_view given = value.get_string().value_unsafe(); allowed(o, given, why))
                o.from_file = Value{std::string{given}};
            break;
        case Type::integer:
            if (!value.is_int64())
                why = "must be an integer";
            else if (std::int64_t v = value.get_int64().value_unsafe(); v < o.min || v > o.max)
                why = fmt::format("out of range [{}, {}]", o.min, o.max);
            else
                o.from_file = Value{v};
            break;
        case Type::boolean:
            if (value.is_bool())
                o.from_file = Value{value.get_bool().value_unsafe()};
            else
                why = "must be true or false";
            break;
        case Type::seconds:
            if (value.is_number()) {
                if (auto d = to_milliseconds(value.get_double().value_unsafe() * 1000))
                    o.from_file = Value{*d};
                else
                    why = "out of range";
            } else if (value.is_string()) {
                if (auto d = parse_duration(value.get_string().value_unsafe()))
                    o.from_file = Value{*d};
                else
                    why = "not a duration (seconds, or like \"500ms\", \"10s\", \"1m30s\")";
            } else {
                why = "must be a number of seconds or a duration string";
            }
            break;
        }
        if (!why.empty())
            return fail_file(fmt::format("key \"{}\": {}", key, why));
    }
    return std::nullopt;
}

std::optional<Options::Exit> Options::parse(int argc, const char* const* argv)
{
    return parse(argc, argv, [](const char* name) { return std::getenv(name); });
}

std::optional<Options::Exit> Options::parse(int argc, const char* const* argv, const Getenv& getenv)
{
    // A variable set to "" counts as unset (API.md), so empty values never override.
    auto env = [&](const std::string& name) -> std::optional<std::string_view> {
        const char* v = name.empty() ? nullptr : getenv(name.c_str());
        if (v == nullptr || *v == '\0')
            return std::nullopt;
        return std::string_view{v};
    };

    std::string config_flag;
    if (auto exit = parse_argv(argc, argv, config_flag))
        return exit;
    for (Option& o : options_) {
        const auto text = env(o.env);
        if (!text)
            continue;
        std::string why;
        o.from_env = parse_text(o, *text, why);
        if (!o.from_env)
            return fail(2, fmt::format("invalid value \"{}\" for environment variable {}: {}", *text, o.env, why));
    }
    std::string config_path = config_flag;
    if (auto text = env(config_env_))
        config_path = *text;
    if (!config_path.empty())
        if (auto exit = read_config_file(config_path))
            return exit;

    for (Option& o : options_) {
        const std::optional<Value>& v = o.from_env ? o.from_env : o.from_flag ? o.from_flag : o.from_file;
        if (!v)
            continue;
        switch (o.type) {
        case Type::string: *static_cast<std::string*>(o.target) = std::get<std::string>(*v); break;
        case Type::integer: *static_cast<std::int64_t*>(o.target) = std::get<std::int64_t>(*v); break;
        case Type::boolean: *static_cast<bool*>(o.target) = std::get<bool>(*v); break;
        case Type::seconds:
            *static_cast<std::chrono::milliseconds*>(o.target) = std::get<std::chrono::milliseconds>(*v);
            break;
        }
    }
    return std::nullopt;
}

void Options::print_help() const
{
    auto names = [](const std::vector<std::string>& ns) {
        std::string s;
        for (const std::string& n : ns)
            s += (s.empty() ? "" : ", ") + dashed(n);
        return s;
    };
    auto value_hint = [](Type t) -> std::string_view {
        switch (t) {
        case Type::string: return " <string>";
        case Type::integer: return " <int>";
        case Type::boolean: return "[=<bool>]";
        case Type::seconds: return " <seconds|duration>";
        }
        return "";
    };
    fmt::memory_buffer b;
    fmt::format_to(std::back_inserter(b), "{} {}: {}\n\nUsage: {} [options]\n\nOptions:\n", program_, version_,
                   summary_, program_);
    for (const Option& o : options_) {
        fmt::format_to(std::back_inserter(b), "  {}{}\n      {}\n      default {}", names(o.names),
                       o.choices.empty() ? std::string{value_hint(o.type)} : fmt::format(" <{}>", fmt::join(named_choices(o.choices), "|")),
                       o.help, o.default_text);
        if (o.type == Type::integer)
            fmt::format_to(std::back_inserter(b), ", range [{}, {}]", o.min, o.max);
        if (!o.env.empty())
            fmt::format_to(std::back_inserter(b), "; env {}", o.env);
        if (!o.json_key.empty())
            fmt::format_to(std::back_inserter(b), "; config key \"{}\"", o.json_key);
        fmt::format_to(std::back_inserter(b), "\n");
    }
    if (!config_names_.empty()) {
        fmt::format_to(std::back_inserter(b), "  {} <file>\n      JSON config file{}{}\n", names(config_names_),
                       config_env_.empty() ? "" : "; env ", config_env_);
    }
    fmt::format_to(std::back_inserter(b),
                   "  -h, --help\n      print this help\n  --version\n      print the version\n\n"
                   "Priority: environment variable > flag > config file > default. An environment variable set\n"
                   "to \"\" counts as unset. Flags take one or two dashes: -a=x, -a x, --address=x.\n"
                   "Durations: seconds (\"10\", \"0.5\") or Go form (\"500ms\", \"10s\", \"1m30s\").\n");
    std::fwrite(b.data(), 1, b.size(), out_);
    std::fflush(out_);
}

}  // namespace core
