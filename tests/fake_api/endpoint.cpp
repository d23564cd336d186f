#include "fake_api/endpoint.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

namespace fake_api {
namespace {

constexpr std::int64_t day_ms = 86'400'000;

isync::error bad_request(std::string message) {
    return isync::make_error(isync::errc::bad_request, std::move(message));
}

// A non-negative decimal integer and nothing else (no sign, no spaces, no 1e3).
std::optional<std::uint64_t> parse_count(std::string_view text) {
    std::uint64_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
    return value;
}

std::string percent_encoded(std::string_view text) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 15];
        }
    }
    return out;
}

std::string page_url(const incidents_query& q, const endpoint_config& config, std::uint64_t skip) {
    std::string url = config.paging_base_url + "/v1/incidents?";
    for (const auto& a : q.app_ids) url += "appId=" + percent_encoded(a) + "&";
    for (const auto& t : q.tlds) url += "tld=" + percent_encoded(t) + "&";
    url += "from=" + std::to_string(q.from_ms) + "&to=" + std::to_string(q.to_ms) + "&take=" + std::to_string(q.take) +
           "&skip=" + std::to_string(skip);
    return url;
}

// Every (appId, tld) combination the dataset knows, once each.
std::vector<std::size_t> matching_pairs(const incidents_query& q, const dataset& data) {
    std::vector<std::size_t> pairs;
    for (const auto& a : q.app_ids)
        for (const auto& t : q.tlds)
            if (auto p = data.pair_index(a, t)) pairs.push_back(*p);
    std::sort(pairs.begin(), pairs.end());
    pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
    return pairs;
}

reply page(const incidents_query& q, const dataset& data, const endpoint_config& config) {
    const auto pairs = matching_pairs(q, data);
    const auto count = data.count(pairs, q.from_ms, q.to_ms);
    const auto items = data.page(pairs, q.from_ms, q.to_ms, q.skip, q.take);

    rapidjson::StringBuffer paging;
    rapidjson::Writer<rapidjson::StringBuffer> w(paging);
    w.StartObject();
    w.Key("previous");
    w.String(q.skip == 0 ? std::string() : page_url(q, config, q.skip > q.take ? q.skip - q.take : 0));
    w.Key("current");
    w.String(page_url(q, config, q.skip));
    w.Key("next");
    w.String(q.skip + q.take < count ? page_url(q, config, q.skip + q.take) : std::string());
    w.Key("count");
    w.Uint64(count);
    w.EndObject();

    reply r;
    std::size_t size = paging.GetSize() + 32;
    for (auto i : items) size += data.json_size(i) + 1;
    r.body.reserve(size);
    r.body.append(R"({"paging":)");
    r.body.append(paging.GetString(), paging.GetSize());
    r.body.append(R"(,"data":[)");
    for (std::size_t k = 0; k < items.size(); ++k) {
        if (k) r.body += ',';
        data.append_json(items[k], r.body);
    }
    r.body.append("]}");
    r.incidents = items.size();
    return r;
}

}  // namespace

isync::result<incidents_query> parse_incidents_query(std::string_view target, std::int64_t now_ms,
                                                     std::size_t take_cap) {
    const auto url = boost::urls::parse_origin_form(target);
    if (!url) return bad_request("malformed request target");
    incidents_query q;
    q.from_ms = now_ms - day_ms;
    q.to_ms = now_ms;
    for (const auto& param : url->params()) {
        if (param.key == "appId") {
            q.app_ids.push_back(param.value);
            continue;
        }
        if (param.key == "tld") {
            q.tlds.push_back(param.value);
            continue;
        }
        const bool is_number = param.key == "from" || param.key == "to" || param.key == "skip" || param.key == "take";
        if (!is_number) continue;  // unknown parameters are ignored, as most APIs do
        const auto value = parse_count(param.value);
        if (!value || *value > static_cast<std::uint64_t>(INT64_MAX))
            return bad_request("\"" + param.key + "\" must be a non-negative integer");
        if (param.key == "from")
            q.from_ms = static_cast<std::int64_t>(*value);
        else if (param.key == "to")
            q.to_ms = static_cast<std::int64_t>(*value);
        else if (param.key == "skip")
            q.skip = *value;
        else
            q.take = *value;
    }
    if (q.app_ids.empty()) return bad_request("\"appId\" is required");
    if (q.tlds.empty()) return bad_request("\"tld\" is required");
    q.take = std::min<std::uint64_t>(q.take, take_cap);
    return q;
}

std::string message_body(std::string_view message) {
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> w(out);
    w.StartObject();
    w.Key("message");
    w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
    w.EndObject();
    return {out.GetString(), out.GetSize()};
}

reply refusal_reply(std::string_view app_id, app_refusal refusal) {
    const auto status = static_cast<unsigned>(refusal);
    switch (refusal) {
        case app_refusal::unauthorized:
            return {status, message_body("Unauthorized")};
        case app_refusal::forbidden:
            return {status, message_body("Forbidden")};
        case app_refusal::invalid:
            break;
    }
    // The real API's own wording for an appId outside the account.
    return {status, message_body("Invalid appId " + std::string(app_id))};
}

reply handle_request(std::string_view method, std::string_view target, std::string_view authorization,
                     const dataset& data, const endpoint_config& config, std::int64_t now_ms) {
    const auto path = target.substr(0, target.find('?'));
    if (path != "/v1/incidents" && path != "/v1/account-settings") return {404, message_body("Not Found")};
    if (method != "GET") return {405, message_body("Method Not Allowed")};
    const auto accepted = [&](const std::string& t) { return authorization == "Bearer " + t; };
    if (!accepted(config.token) && std::none_of(config.other_tokens.begin(), config.other_tokens.end(), accepted))
        return {401, message_body("Unauthorized")};
    if (path == "/v1/account-settings") return {200, config.account_settings};
    auto q = parse_incidents_query(target, now_ms, config.take_cap);
    if (!q) return {422, message_body(q.error().message)};
    for (const auto& app : q->app_ids)
        if (const auto refused = config.refused_app_ids.find(app); refused != config.refused_app_ids.end())
            return refusal_reply(app, refused->second);
    if (config.max_result_window > 0 && q->skip + q->take > config.max_result_window)
        return {400, message_body("Result window is too large, from + size must be less than or equal to: [" +
                                  std::to_string(config.max_result_window) + "] but was [" +
                                  std::to_string(q->skip + q->take) + "]")};
    return page(*q, data, config);
}

}  // namespace fake_api
