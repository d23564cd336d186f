#include "api/outcome.hpp"

#include "util/text.hpp"
#include "util/timestamp.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <charconv>

namespace isync::api {

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, std::int64_t now_ms) {
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    if (value.empty()) return std::nullopt;
    if (value.front() >= '0' && value.front() <= '9') {
        std::int64_t seconds = 0;
        // All digits first: "99999999999999999999abc" is malformed, not huge.
        if (!std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
        auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
        if (ec == std::errc::result_out_of_range) return std::chrono::milliseconds::max();
        if (ec != std::errc{} || ptr != value.data() + value.size()) return std::nullopt;
        if (seconds > std::chrono::milliseconds::max().count() / 1000) return std::chrono::milliseconds::max();
        return std::chrono::seconds(seconds);
    }
    auto when = util::parse_http_date_ms(value);
    if (!when) return std::nullopt;
    return std::chrono::milliseconds(std::max<std::int64_t>(0, *when - now_ms));
}

std::string server_message(std::string_view body) {
    // Iterative parse: a hostile body cannot nest its way down the stack.
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
    if (!doc.HasParseError() && doc.IsObject()) {
        for (const char* key : {"message", "error", "detail"}) {
            const auto it = doc.FindMember(key);
            if (it != doc.MemberEnd() && it->value.IsString())
                return util::printable(std::string_view(it->value.GetString(), it->value.GetStringLength()), 200);
        }
    }
    return "\"" + util::printable(body, 200) + "\"";
}

outcome classify_response(unsigned status, std::string_view body, std::string_view retry_after, std::int64_t now_ms,
                          std::chrono::milliseconds max_delay) {
    if (status >= 200 && status < 300) return {outcome_kind::success, {}, std::nullopt};
    if (status == 401 || status == 403)
        return {outcome_kind::auth,
                fmt::format("HTTP {}: the API refused the token; check that it is current and allowed to read "
                            "incidents for this appId",
                            status),
                std::nullopt};
    if (status == 429) {
        auto delay = parse_retry_after(retry_after, now_ms);
        std::chrono::milliseconds clamped = delay ? std::min(*delay, max_delay) : max_delay;
        return {outcome_kind::rate_limited,
                fmt::format("HTTP 429: rate limited; waiting {} ms (Retry-After: \"{}\")", clamped.count(),
                            util::printable(retry_after, 40)),
                clamped};
    }
    if (status >= 500) return {outcome_kind::transient, fmt::format("HTTP {}: server error", status), std::nullopt};
    if (status >= 300 && status < 400)
        return {outcome_kind::bad_request,
                fmt::format("HTTP {}: the server redirected; redirects are not followed: set api.base_url to the "
                            "final address",
                            status),
                std::nullopt};
    return {outcome_kind::bad_request,
            fmt::format("HTTP {}: the API refused the request: {}", status, server_message(body)), std::nullopt};
}

}  // namespace isync::api
