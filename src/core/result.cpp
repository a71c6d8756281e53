#include "core/result.hpp"

namespace core {

std::string_view message(Errc e) noexcept
{
    switch (e) {
    case Errc::ok: return "ok";
    case Errc::bad_name: return "invalid metric name";
    case Errc::bad_kind: return "unknown metric type";
    case Errc::bad_value: return "invalid metric value";
    case Errc::non_finite: return "value is not a finite number";
    case Errc::counter_overflow: return "counter would overflow int64";
    case Errc::not_found: return "metric not found";
    case Errc::malformed_json: return "malformed JSON";
    case Errc::missing_field: return "missing required field";
    case Errc::empty_batch: return "empty batch";
    case Errc::batch_too_large: return "batch too large";
    case Errc::bad_request: return "bad request";
    case Errc::header_too_large: return "request header fields too large";
    case Errc::uri_too_long: return "URI too long";
    case Errc::body_too_large: return "payload too large";
    case Errc::unsupported_media_type: return "Content-Type must be application/json";
    case Errc::bad_encoding: return "invalid body encoding";
    case Errc::bad_hash: return "HashSHA256 mismatch";
    case Errc::forbidden: return "forbidden";
    case Errc::timeout: return "timeout";
    case Errc::storage_unavailable: return "storage unavailable";
    case Errc::storage_busy: return "storage busy, retry later";
    case Errc::outcome_unknown: return "storage outcome unknown";
    case Errc::io_error: return "I/O error";
    case Errc::corrupt_snapshot: return "corrupt snapshot";
    case Errc::too_many_metrics: return "metric cap reached (--max-metrics); delete metrics or raise the cap";
    }
    return "unknown error";
}

}  // namespace core
