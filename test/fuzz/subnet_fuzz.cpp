// Subnet::parse and parse_ip (X-Real-IP, -t) on arbitrary text: no crash; what parses prints in
// a canonical form that parses back to the same network, which contains its own address.
#include "server/subnet.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    if (auto address = server::parse_ip(text)) {
        const auto again = server::parse_ip(address->to_string());
        if (!again || *again != *address)
            std::abort();
    }
    if (auto subnet = server::Subnet::parse(text)) {
        const std::string canonical = subnet->to_string();
        auto again = server::Subnet::parse(canonical);
        if (!again || again->to_string() != canonical)
            std::abort();
        const auto network = server::parse_ip(canonical.substr(0, canonical.find('/')));
        if (!network || !subnet->contains(*network))
            std::abort();
    }
    return 0;
}
