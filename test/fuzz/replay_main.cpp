// Driver for fuzz targets without libFuzzer (g++ builds, sanitizer runs in CI): feeds every seed
// file given on the command line, then a bounded number of random mutations of them, to
// LLVMFuzzerTestOneInput. A crash, sanitizer report or hang fails the test.
//   FUZZ_ITERATIONS  mutations (default 20000)
//   FUZZ_SEED        the mutations' random seed (default a fixed one); tools/test.sh picks one per
//                    run and prints it, and the same seed replays the same mutations.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::string read_file(const char* path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void mutate(std::string& s, std::mt19937_64& rng)
{
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < edits; ++i) {
        const std::size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
        switch (rng() % 5) {
        case 0:  // flip a byte
            if (!s.empty())
                s[pos % s.size()] = static_cast<char>(rng());
            break;
        case 1:  // insert a byte
            s.insert(s.begin() + static_cast<std::ptrdiff_t>(pos), static_cast<char>(rng()));
            break;
        case 2:  // erase a run
            if (!s.empty())
                s.erase(pos % s.size(), 1 + rng() % 16);
            break;
        case 3:  // duplicate a run
            if (!s.empty()) {
                const std::size_t at = pos % s.size();
                s.insert(at, s.substr(at, 1 + rng() % 32));
            }
            break;
        default:  // interesting bytes of text protocols
            static constexpr char interesting[] = "\r\n:{}[]\",0-9e.\x00\xff /%";
            s.insert(s.begin() + static_cast<std::ptrdiff_t>(pos),
                     interesting[rng() % (sizeof interesting - 1)]);
        }
    }
    if (s.size() > 1 << 16)
        s.resize(1 << 16);
}

}  // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> seeds;
    for (int i = 1; i < argc; ++i)
        seeds.push_back(read_file(argv[i]));
    if (seeds.empty())
        seeds.emplace_back();
    const char* env = std::getenv("FUZZ_ITERATIONS");
    const long iterations = env != nullptr ? std::atol(env) : 20000;
    const char* seed_text = std::getenv("FUZZ_SEED");
    const std::uint64_t seed = seed_text != nullptr && *seed_text != '\0' ? std::strtoull(seed_text, nullptr, 10)
                                                                            : 0x6d657472696373;
    std::mt19937_64 rng(seed);
    for (const auto& s : seeds)
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    for (long i = 0; i < iterations; ++i) {
        std::string input = seeds[static_cast<std::size_t>(i) % seeds.size()];
        mutate(input, rng);
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    }
    std::printf("fuzz replay: %zu seeds, %ld mutations with FUZZ_SEED=%llu, no crash\n", seeds.size(), iterations,
                static_cast<unsigned long long>(seed));
    return 0;
}
