// metrics-keygen: writes the X25519 key pair for sealed-box encryption (codec/sealed_box.hpp).
#include "codec/sealed_box.hpp"

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view usage_text =
    "Usage: metrics-keygen [--force] DIR\n"
    "       metrics-keygen [--force] --private FILE --public FILE\n"
    "\n"
    "Writes a new X25519 key pair for sealed-box encryption of agent reports.\n"
    "  DIR            writes DIR/private.key and DIR/public.key\n"
    "  --private FILE where the private key goes (give it to metrics-server -crypto-key)\n"
    "  --public FILE  where the public key goes (give it to metrics-agent -crypto-key)\n"
    "  --force        replace existing files (otherwise an existing file stops everything)\n"
    "  -h, --help     this text\n"
    "  --version      the version\n"
    "\n"
    "The private key file gets mode 0600 and the public key file 0644, whatever the umask.\n"
    "Each file is one line: \"metrics-x25519-private-key <base64>\" or\n"
    "\"metrics-x25519-public-key <base64>\" (32 bytes), so the kinds cannot be mixed up.\n"
    "Exit status: 0 written, 1 not written (a file exists, cannot write), 2 usage error.\n";

struct Request {
    std::string directory;
    std::string private_path;
    std::string public_path;
    bool force = false;
};

int usage_error(const std::string& message)
{
    std::fprintf(stderr, "metrics-keygen: %s (see --help)\n", message.c_str());
    return 2;
}

/// The value of `--name FILE` or `--name=FILE` at argv[i]; advances i past it.
bool take_value(std::string_view name, int argc, char** argv, int& i, std::string& out)
{
    const std::string_view arg = argv[i];
    if (arg == name) {
        if (i + 1 >= argc)
            return false;
        out = argv[++i];
        return true;
    }
    out = arg.substr(name.size() + 1);
    return true;
}

}  // namespace

int main(int argc, char** argv)
{
    Request r;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help" || arg == "-help") {
            std::fputs(usage_text.data(), stdout);
            return 0;
        }
        if (arg == "--version") {
            std::printf("metrics-keygen %s\n", METRICS_VERSION);
            return 0;
        }
        if (arg == "--force" || arg == "-force") {
            r.force = true;
        } else if (arg == "--private" || arg.starts_with("--private=")) {
            if (!take_value("--private", argc, argv, i, r.private_path) || r.private_path.empty())
                return usage_error("--private needs a file name");
        } else if (arg == "--public" || arg.starts_with("--public=")) {
            if (!take_value("--public", argc, argv, i, r.public_path) || r.public_path.empty())
                return usage_error("--public needs a file name");
        } else if (arg.starts_with("-") && arg != "-") {
            return usage_error("unknown option " + std::string{arg});
        } else if (!r.directory.empty()) {
            return usage_error("one directory only");
        } else {
            r.directory = arg;
        }
    }
    const bool files = !r.private_path.empty() || !r.public_path.empty();
    if (files == !r.directory.empty())
        return usage_error("give either DIR or both --private FILE and --public FILE");
    if (files && (r.private_path.empty() || r.public_path.empty()))
        return usage_error("--private and --public go together");
    if (!files) {
        r.private_path = r.directory + "/private.key";
        r.public_path = r.directory + "/public.key";
    }
    if (r.private_path == r.public_path)
        return usage_error("the private and public key files must differ");
    try {
        const auto keys = codec::KeyPair::generate();
        if (auto error = codec::write_key_files(r.private_path, r.public_path, keys, r.force); !error.empty()) {
            std::fprintf(stderr, "metrics-keygen: %s\n", error.c_str());
            return 1;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "metrics-keygen: %s\n", e.what());
        return 1;
    }
    std::printf("private key: %s\npublic key:  %s\n", r.private_path.c_str(), r.public_path.c_str());
    return 0;
}
