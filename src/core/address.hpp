#pragma once

#include "core/result.hpp"

#include <string_view>

namespace core {

/// `host:port` as both binaries take it: an `http://` prefix and trailing slashes are dropped,
/// `[v6]` loses its brackets, the host may be empty (`:8080`). The port must be a decimal in
/// 0..65535. Views point into the input. Malformed: Errc::bad_value.
struct HostPort {
    std::string_view host;
    std::string_view port;
    unsigned short number = 0;
};
Result<HostPort> split_host_port(std::string_view address) noexcept;

}  // namespace core
