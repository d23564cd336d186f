#include "fake_api/content.hpp"

#include "fake_api/random.hpp"
#include "fake_api/text_format.hpp"

#include <algorithm>
#include <array>

namespace fake_api {
namespace {

using namespace std::string_view_literals;

constexpr std::int64_t hour_ms = 3'600'000;
constexpr std::int64_t day_ms = 24 * hour_ms;

// Salts that keep the independent random streams of one incident apart.
constexpr std::uint64_t salt_origin = 0x6f726967;
constexpr std::uint64_t salt_spec = 0x73706563;
constexpr std::uint64_t salt_script = 0x73637270;
constexpr std::uint64_t salt_style = 0x7374796c;

constexpr std::array categories{
    "pii"sv, "pci"sv, "deviation"sv, "vulnerabilities"sv, "domain reputation"sv, "suspicious behavior"sv};

constexpr std::array<std::array<std::string_view, 3>, categories.size()> titles{{
    {"Script reads personal data fields"sv, "PII exfiltration attempt"sv, "Email field read by a third-party script"sv},
    {"Credit card field accessed"sv, "Payment form skimming suspected"sv, "Script reads the card number input"sv},
    {"Script behavior changed"sv, "New network destination observed"sv, "Script changed its data access"sv},
    {"Vulnerable library detected"sv, "Outdated package with known CVEs"sv, "Library version below the safe minimum"sv},
    {"Data sent to a low-reputation domain"sv, "Newly registered domain contacted"sv, "Domain on a threat list"sv},
    {"Obfuscated code executed"sv, "Keylogging behavior detected"sv, "Form hijacking suspected"sv},
}};

constexpr std::array risk_levels{"low"sv, "medium"sv, "high"sv, "critical"sv, "informative"sv};

constexpr std::array page_type_names{"checkout"sv, "login"sv, "products_and_search"sv, "account"sv, "cart"sv};

constexpr std::array form_fields{"email"sv, "card_number"sv, "cvv"sv, "password"sv, "phone"sv, "address"sv};

constexpr std::array collectors{"collector.example.net"sv, "metrics.example.org"sv, "cdn-stats.example.io"sv,
                                "xn--bcher-kva.example"sv};

struct vendor {
    std::string_view name;
    std::string_view domain;  // empty: first party, served from the site itself
};

constexpr std::array vendors{
    vendor{"Google"sv, "www.googletagmanager.example"sv},
    vendor{"Meta"sv, "connect.facebook.example"sv},
    vendor{"Hotjar"sv, "static.hotjar.example"sv},
    vendor{"Segment"sv, "cdn.segment.example"sv},
    vendor{"Stripe"sv, "js.stripe.example"sv},
    vendor{"Unknown"sv, "cdn.jsdelivr.example"sv},
    vendor{"Self"sv, ""sv},
};

constexpr std::array script_libs{"analytics"sv, "widget"sv, "tracker"sv, "checkout"sv, "chat"sv, "ab-test"sv};

constexpr std::array risk_reasons{"Accesses payment fields"sv, "Sends data to a new domain"sv,
                                  "Reads form inputs on sensitive pages"sv, "Loads code from an unknown origin"sv,
                                  "No risky behavior observed"sv};

constexpr std::array packages{"jquery"sv,    "lodash"sv,     "moment"sv, "angular"sv,
                              "bootstrap"sv, "handlebars"sv, "vue"sv,    "underscore"sv};

struct action_kind {
    std::string_view type;
    std::array<std::string_view, 3> subtypes;
};

constexpr std::array action_kinds{
    action_kind{"network"sv, {"fetch"sv, "xhr"sv, "beacon"sv}},
    action_kind{"dom"sv, {"input_read"sv, "element_added"sv, "listener_added"sv}},
    action_kind{"storage"sv, {"local_storage"sv, "session_storage"sv, "indexed_db"sv}},
    action_kind{"cookie"sv, {"read"sv, "write"sv, "delete"sv}},
    action_kind{"form"sv, {"submit"sv, "field_read"sv, "action_changed"sv}},
};

constexpr std::array<std::int16_t, 6> offsets_minutes{120, -300, 330, 0, 60, -480};

constexpr std::array quirks{quirk::details_null,       quirk::no_script,       quirk::script_null,
                            quirk::no_actions,         quirk::risk_level_null, quirk::no_page_types_per,
                            quirk::no_additional_data, quirk::no_category,     quirk::first_seen_null,
                            quirk::no_under_review,    quirk::title_null,      quirk::page_types_null};

template <class T, std::size_t N>
const T& pick(rng& r, const std::array<T, N>& items) {
    return items[r.below(N)];
}

// A non-empty subset of the page types, starting at a random type so the
// listed order is not always sorted (the model's order is).
std::vector<std::string_view> pick_page_types(rng& r) {
    const auto mask = 1 + r.below((1u << page_type_names.size()) - 1);
    const auto start = r.below(page_type_names.size());
    std::vector<std::string_view> out;
    for (std::size_t k = 0; k < page_type_names.size(); ++k) {
        const auto t = (start + k) % page_type_names.size();
        if (mask & (1u << t)) out.push_back(page_type_names[t]);
    }
    return out;
}

std::string draw_details(rng& r, std::string_view initiator) {
    const auto field = std::string(pick(r, form_fields));
    const auto collector = std::string(pick(r, collectors));
    const auto n = std::to_string(1 + r.below(5000));
    // Quotes, a newline, a backslash and non-ASCII text: all things a JSON
    // writer escapes or passes through, which the daemon must store unchanged.
    switch (r.below(5)) {
        case 0:
            return "Script " + std::string(initiator) + " read the \"" + field + "\" field and sent it to " +
                   collector + ".";
        case 1:
            return "Observed " + n + " times in the last 24 hours.\nFirst reported on the " + field + " input.";
        case 2:
            return "Donn\u00e9es de carte lues par un script tiers \u2014 v\u00e9rifiez " + collector + ".";
        case 3:
            return "Access to " + field + " detected; path C:\\temp\\" + n + " is referenced.";
        default:
            return "Script behaviour deviated from its baseline (" + n + " sessions).";
    }
}

std::vector<std::pair<std::string, std::string>> draw_args(rng& r, std::string_view type) {
    if (type == "network")
        return {{"url", "https://" + std::string(pick(r, collectors)) + "/c?id=" + std::to_string(r.below(100000))},
                {"method", r.below(2) ? "POST" : "GET"}};
    if (type == "dom") return {{"selector", "#" + std::string(pick(r, form_fields))}, {"event", "input"}};
    if (type == "storage") return {{"key", "_ga_" + hex(r.next(), 8)}, {"operation", r.below(2) ? "read" : "write"}};
    if (type == "cookie") return {{"name", r.below(2) ? "_session" : "cart_id"}, {"operation", "read"}};
    return {{"field", std::string(pick(r, form_fields))}, {"target", "https://" + std::string(pick(r, collectors))}};
}

std::string cve(rng& r) {
    std::string out = "CVE-";
    append_fixed(out, 2015 + r.below(9), 4);
    out += '-';
    append_fixed(out, 10000 + r.below(90000), 5);
    return out;
}

std::string version_string(rng& r) {
    return std::to_string(r.below(4)) + "." + std::to_string(r.below(20)) + "." + std::to_string(r.below(10));
}

}  // namespace

ts_style style_for(std::uint64_t seed, std::uint64_t index, ts_field field) {
    rng r(hash_of(seed ^ salt_style, index, static_cast<std::uint64_t>(field)));
    // ack_updated_at is documented "with millis": never the seconds-only form.
    const auto form =
        field == ts_field::ack_updated_at ? static_cast<ts_form>(1 + r.below(2)) : static_cast<ts_form>(r.below(3));
    return {form, form == ts_form::millis_offset ? pick(r, offsets_minutes) : std::int16_t{0}};
}

std::int64_t quantize(std::int64_t ms, ts_style style) {
    if (style.form != ts_form::seconds_z) return ms;
    return ms - ((ms % 1000) + 1000) % 1000;
}

std::string render_timestamp(std::int64_t ms, ts_style style) {
    ms = quantize(ms, style);
    std::string out;
    out.reserve(29);
    if (style.form != ts_form::millis_offset) {
        append_utc(out, ms, style.form == ts_form::millis_z);
        out += 'Z';
        return out;
    }
    append_utc(out, ms + style.offset_minutes * 60'000LL, true);  // the local time at that offset
    const int off = style.offset_minutes < 0 ? -style.offset_minutes : style.offset_minutes;
    out += style.offset_minutes < 0 ? '-' : '+';
    append_fixed(out, static_cast<std::uint64_t>(off / 60), 2);
    out += ':';
    append_fixed(out, static_cast<std::uint64_t>(off % 60), 2);
    return out;
}

incident_origin draw_origin(std::uint64_t seed, std::uint64_t index, std::size_t pair_count, std::int64_t start_ms,
                            std::int64_t end_ms) {
    rng r(hash_of(seed ^ salt_origin, index));
    incident_origin o;
    o.pair = static_cast<std::uint32_t>(r.below(pair_count));
    o.script_slot = static_cast<std::uint32_t>(r.next() >> 32);
    o.last_seen_ms = r.between(start_ms, end_ms);
    o.first_seen_gap_ms = r.between(0, 30 * day_ms);
    return o;
}

script_spec make_script_spec(std::uint64_t seed, std::uint32_t pair, std::uint32_t slot, std::string_view app_id,
                             std::string_view host_domain, std::int64_t start_ms, std::int64_t end_ms) {
    const std::uint64_t index = (static_cast<std::uint64_t>(pair) << 32) | slot;
    rng r(hash_of(seed ^ salt_script, index));
    script_spec s;
    s.key = hex(r.next(), 16) + hex(r.next(), 16);
    const vendor& v = pick(r, vendors);
    const auto lib = std::string(pick(r, script_libs)) + "-" + std::to_string(slot);
    s.id = v.domain.empty() ? "https://" + std::string(host_domain) + "/static/js/" + lib + ".js"
                            : "https://" + std::string(v.domain) + "/js/" + lib + ".min.js";
    s.app_id = app_id;
    s.host_domain = host_domain;
    s.type = v.domain.empty() ? "first_party"sv : "third_party"sv;
    s.vendor = v.name;
    s.vendor_null = r.chance(20);
    const auto first = r.between(start_ms - 30 * day_ms, start_ms);
    const auto last = r.between(start_ms, end_ms);
    s.first_seen = render_timestamp(first, style_for(seed, index, ts_field::script_first_seen));
    s.last_seen = render_timestamp(last, style_for(seed, index, ts_field::script_last_seen));
    s.users_affected_percentage = static_cast<double>(r.below(10001)) / 100.0;
    s.ack = r.chance(300);
    s.risk_level = pick(r, risk_levels);
    s.risk_reason = pick(r, risk_reasons);
    s.page_types = pick_page_types(r);
    s.extra_field = r.chance(20);
    return s;
}

incident_spec make_incident_spec(const incident_facts& f) {
    rng r(hash_of(f.seed ^ salt_spec, f.index));
    incident_spec s;
    s.id = f.id;
    const auto category = r.below(categories.size());
    s.category = categories[category];
    s.title = titles[category][r.below(titles[category].size())];
    s.initiator = f.script ? f.script->id : "https://" + std::string(f.host_domain) + "/inline/" + hex(r.next(), 8);
    s.details = draw_details(r, s.initiator);
    s.first_seen = render_timestamp(f.first_seen_ms, style_for(f.seed, f.index, ts_field::first_seen));
    s.last_seen = render_timestamp(f.last_seen_ms, style_for(f.seed, f.index, ts_field::last_seen));
    s.app_id = f.app_id;
    s.host_domain = f.host_domain;

    s.page_types = pick_page_types(r);
    for (auto t : s.page_types) {
        const bool omit = r.chance(100);  // a listed type without a percentage
        const bool integral = r.below(2);
        const double value = integral ? static_cast<double>(r.below(101)) : static_cast<double>(r.below(1000)) / 10.0;
        if (!omit) s.page_types_per.push_back({t, value, integral});
    }
    if (r.chance(100) && s.page_types.size() < page_type_names.size()) {  // a percentage for an unlisted type
        for (auto t : page_type_names) {
            if (std::find(s.page_types.begin(), s.page_types.end(), t) != s.page_types.end()) continue;
            s.page_types_per.push_back({t, static_cast<double>(r.below(1000)) / 10.0, false});
            break;
        }
    }

    const auto span = f.last_seen_ms - f.first_seen_ms;
    s.ack_updated_at = render_timestamp(f.first_seen_ms + r.between(0, span + 1),
                                        style_for(f.seed, f.index, ts_field::ack_updated_at));

    const auto vulnerability_count =
        s.category == "vulnerabilities" ? 1 + r.below(2) : (r.below(10) < 7 ? 0 : 1 + r.below(2));
    for (std::uint64_t k = 0; k < vulnerability_count; ++k) {
        vulnerability_spec v{pick(r, packages), version_string(r), {}};
        for (auto n = 1 + r.below(3); n > 0; --n) v.ids.push_back(cve(r));
        s.vulnerabilities.push_back(std::move(v));
    }
    s.additional_data_empty = vulnerability_count == 0 && r.below(2);

    s.under_review = r.below(2);
    const auto risk = r.below(risk_levels.size());
    s.script = f.script;

    const auto action_count = r.below(4);
    for (std::uint64_t k = 0; k < action_count; ++k) {
        const action_kind& kind = pick(r, action_kinds);
        action_spec a{kind.type, pick(r, kind.subtypes),
                      render_timestamp(f.first_seen_ms + r.between(0, span + 1),
                                       style_for(f.seed, f.index * 8 + k, ts_field::action)),
                      draw_args(r, kind.type)};
        s.actions.push_back(std::move(a));
    }

    if (r.chance(20)) s.oddity = pick(r, quirks);
    if (r.chance(20)) s.extra = static_cast<extra_field>(1 + r.below(3));

    // Live-mode changes: each one moves the risk level on and leaves one action
    // behind, so the expected incident follows from the version alone.
    s.risk_level = risk_levels[(risk + f.version) % risk_levels.size()];
    if (f.version > 0) {
        if (s.oddity == quirk::risk_level_null || s.oddity == quirk::no_actions) s.oddity = quirk::none;
        s.actions.push_back(
            {"network"sv,
             "beacon"sv,
             s.last_seen,
             {{"url", "https://" + std::string(collectors[0]) + "/live"}, {"change", std::to_string(f.version)}}});
    }
    if (s.oddity == quirk::no_script || s.oddity == quirk::script_null) s.script = nullptr;
    return s;
}

}  // namespace fake_api
