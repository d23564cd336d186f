#include "api/rate_limit.hpp"

#include "util/text.hpp"
#include "util/timestamp.hpp"

#include <algorithm>
#include <charconv>

namespace isync::api {
namespace {

std::optional<std::int64_t> non_negative(std::string_view text) {
    text = util::trim(text);
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < 0) return std::nullopt;
    return value;
}

}  // namespace

std::int64_t server_now_ms(std::string_view date_header, std::int64_t local_now_ms) {
    if (date_header.empty()) return local_now_ms;
    return util::parse_http_date_ms(date_header).value_or(local_now_ms);
}

std::optional<rate_budget> parse_rate_limit(std::string_view remaining, std::string_view reset,
                                            std::int64_t server_now_ms) {
    const auto left = non_negative(remaining);
    const auto at = non_negative(reset);
    if (!left || !at) return std::nullopt;
    constexpr std::int64_t delta_seconds_below = 1'000'000'000;  // 2001-09-09 as epoch seconds
    constexpr std::int64_t epoch_ms_above = 1'000'000'000'000;   // the same instant as epoch milliseconds
    std::int64_t reset_in_ms = 0;
    if (*at < delta_seconds_below)
        reset_in_ms = *at * 1000;
    else if (*at > epoch_ms_above)
        reset_in_ms = *at - server_now_ms;
    else
        reset_in_ms = *at * 1000 - server_now_ms;
    return rate_budget{*left, std::chrono::milliseconds(std::max<std::int64_t>(0, reset_in_ms))};
}

}  // namespace isync::api
