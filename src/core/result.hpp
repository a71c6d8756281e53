#pragma once

#include <cassert>
#include <string_view>
#include <utility>
#include <variant>

namespace core {

/// Input-driven failures. `server::status_for` (server/response.cpp) maps each one to an HTTP status.
enum class Errc {
    ok = 0,
    // metric model
    bad_name,          ///< empty, too long, control characters, '/' or whitespace
    bad_kind,          ///< not "gauge" or "counter"
    bad_value,         ///< unparsable number, wrong JSON type or wrong field for the kind
    non_finite,        ///< NaN or infinity
    counter_overflow,  ///< the sum would leave int64
    not_found,         ///< no such metric
    // JSON documents
    malformed_json,
    missing_field,
    empty_batch,
    batch_too_large,
    // HTTP framing and middleware
    bad_request,          ///< malformed or ambiguous HTTP framing
    header_too_large,     ///< 431
    uri_too_long,         ///< 414
    body_too_large,       ///< 413 (also decompressed bodies)
    unsupported_media_type,
    bad_encoding,         ///< invalid gzip or undecryptable body
    bad_hash,             ///< HashSHA256 mismatch
    forbidden,            ///< trusted subnet
    timeout,
    // storage and I/O
    storage_unavailable,  ///< database down or I/O failure; nothing changed
    storage_busy,         ///< no database answer within the request deadline; nothing changed (503)
    outcome_unknown,      ///< the connection broke after a write was sent: it may have taken effect
    io_error,
    corrupt_snapshot,
    too_many_metrics,  ///< a new metric would exceed --max-metrics; nothing changed (507)
};

/// A short, stable English reason for logs and response bodies.
std::string_view message(Errc e) noexcept;

/// A value or an `Errc`, shaped like `std::expected<T, Errc>` (C++23).
template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    Result(Errc e) : v_(std::in_place_index<1>, e) { assert(e != Errc::ok); }  // NOLINT

    explicit operator bool() const noexcept { return v_.index() == 0; }
    bool has_value() const noexcept { return v_.index() == 0; }

    T& value() & { assert(has_value()); return std::get<0>(v_); }
    const T& value() const& { assert(has_value()); return std::get<0>(v_); }
    T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    Errc error() const noexcept { return v_.index() == 1 ? std::get<1>(v_) : Errc::ok; }

private:
    std::variant<T, Errc> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Errc e) : e_(e) {}  // NOLINT: implicit by design
    explicit operator bool() const noexcept { return e_ == Errc::ok; }
    bool has_value() const noexcept { return e_ == Errc::ok; }
    Errc error() const noexcept { return e_; }

private:
    Errc e_ = Errc::ok;
};

}  // namespace core
