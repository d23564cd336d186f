#include "fake_api/render_model.hpp"

#include "util/timestamp.hpp"

#include <algorithm>
#include <stdexcept>

namespace fake_api {
namespace {

// Timestamps as the parser must store them: normalised to UTC milliseconds.
std::string normalized(const std::string& text) {
    auto out = isync::util::normalize_iso8601(text);
    if (!out) throw std::logic_error("fake_api wrote a timestamp it cannot parse: " + text);
    return *out;
}

std::optional<std::string> unless(bool null, std::string_view value) {
    if (null) return std::nullopt;
    return std::string(value);
}

std::vector<isync::model::page_type> page_types(const incident_spec& s) {
    std::vector<isync::model::page_type> out;
    auto find_or_add = [&](std::string_view name) -> isync::model::page_type& {
        for (auto& p : out)
            if (p.name == name) return p;
        return out.emplace_back(isync::model::page_type{std::string(name), false, std::nullopt});
    };
    if (s.oddity != quirk::page_types_null)
        for (auto t : s.page_types) find_or_add(t).listed = true;
    if (s.oddity != quirk::no_page_types_per)
        for (const auto& share : s.page_types_per) find_or_add(share.name).percentage = share.value;
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

}  // namespace

isync::model::script to_model(const script_spec& s) {
    isync::model::script m;
    m.key = s.key;
    m.id = s.id;
    m.app_id = s.app_id;
    m.host_domain = s.host_domain;
    m.type = std::string(s.type);
    m.vendor = unless(s.vendor_null, s.vendor);
    m.first_seen = normalized(s.first_seen);
    m.last_seen = normalized(s.last_seen);
    m.users_affected_percentage = s.users_affected_percentage;
    m.ack = s.ack;
    m.risk_level = std::string(s.risk_level);
    m.risk_reason = std::string(s.risk_reason);
    for (auto t : s.page_types) m.page_types.emplace_back(t);
    return m;
}

isync::model::incident to_model(const incident_spec& s, std::string raw_json) {
    isync::model::incident m;
    m.id = s.id;
    m.app_id = s.app_id;
    m.host_domain = s.host_domain;
    m.category = unless(s.oddity == quirk::no_category, s.category);
    m.title = unless(s.oddity == quirk::title_null, s.title);
    m.details = unless(s.oddity == quirk::details_null, s.details);
    m.initiator = s.initiator;
    if (s.oddity != quirk::first_seen_null) m.first_seen = normalized(s.first_seen);
    m.last_seen = normalized(s.last_seen);
    m.ack_updated_at = normalized(s.ack_updated_at);
    if (s.oddity != quirk::no_under_review) m.under_review = s.under_review;
    m.risk_level = unless(s.oddity == quirk::risk_level_null, s.risk_level);
    m.page_types = page_types(s);
    if (s.script) m.script = to_model(*s.script);
    if (s.oddity != quirk::no_actions) {
        for (const auto& a : s.actions)
            m.actions.push_back({std::string(a.type), std::string(a.subtype), normalized(a.last_seen), a.args});
    }
    if (s.oddity != quirk::no_additional_data && !s.additional_data_empty) {
        for (const auto& v : s.vulnerabilities) m.vulnerabilities.push_back({std::string(v.package), v.version, v.ids});
    }
    m.raw_json = std::move(raw_json);
    return m;
}

}  // namespace fake_api
