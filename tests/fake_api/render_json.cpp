#include "fake_api/render_json.hpp"

#include <rapidjson/writer.h>

namespace fake_api {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(json_writer& w, std::string_view text) {
    w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

void key(json_writer& w, std::string_view name) { w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size())); }

void put_extra_field(json_writer& w) {
    key(w, "new_vendor_field");
    w.StartObject();
    key(w, "x");
    w.Int(1);
    w.EndObject();
}

// A string member, or `null` when the incident's quirk says so.
void string_member(json_writer& w, std::string_view name, std::string_view value, bool null) {
    key(w, name);
    if (null)
        w.Null();
    else
        put(w, value);
}

void write_page_types(json_writer& w, const incident_spec& s) {
    if (s.oddity == quirk::page_types_null) {
        key(w, "page_types");
        w.Null();
    } else {
        key(w, "page_types");
        w.StartArray();
        for (auto t : s.page_types) put(w, t);
        w.EndArray();
    }
    if (s.oddity == quirk::no_page_types_per) return;
    key(w, "page_types_per");
    w.StartObject();
    for (const auto& share : s.page_types_per) {
        key(w, share.name);
        if (share.integral)
            w.Int64(static_cast<std::int64_t>(share.value));
        else
            w.Double(share.value);
    }
    w.EndObject();
}

void write_additional_data(json_writer& w, const incident_spec& s) {
    if (s.oddity == quirk::no_additional_data) return;
    key(w, "additional_data");
    w.StartObject();
    if (!s.additional_data_empty) {
        key(w, "vulnerabilities");
        w.StartArray();
        for (const auto& v : s.vulnerabilities) {
            w.StartObject();
            key(w, "package");
            put(w, v.package);
            key(w, "version");
            put(w, v.version);
            key(w, "ids");
            w.StartArray();
            for (const auto& id : v.ids) put(w, id);
            w.EndArray();
            w.EndObject();
        }
        w.EndArray();
    }
    w.EndObject();
}

void write_actions(json_writer& w, const incident_spec& s) {
    if (s.oddity == quirk::no_actions) return;
    key(w, "actions");
    w.StartArray();
    for (const auto& a : s.actions) {
        w.StartObject();
        key(w, "type");
        put(w, a.type);
        key(w, "subtype");
        put(w, a.subtype);
        key(w, "last_seen");
        put(w, a.last_seen);
        key(w, "action_args");
        w.StartObject();
        for (const auto& [k, v] : a.args) {
            key(w, k);
            put(w, v);
        }
        w.EndObject();
        w.EndObject();
    }
    w.EndArray();
}

}  // namespace

std::string write_script_json(const script_spec& s) {
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartObject();
    key(w, "users_affected_percentage");
    w.Double(s.users_affected_percentage);
    key(w, "ack");
    w.Bool(s.ack);
    key(w, "key");
    put(w, s.key);
    key(w, "id");
    put(w, s.id);
    key(w, "app_id");
    put(w, s.app_id);
    key(w, "host_domain");
    put(w, s.host_domain);
    key(w, "type");
    put(w, s.type);
    string_member(w, "vendor", s.vendor, s.vendor_null);
    key(w, "first_seen");
    put(w, s.first_seen);
    key(w, "last_seen");
    put(w, s.last_seen);
    key(w, "risk");
    w.StartObject();
    key(w, "level");
    put(w, s.risk_level);
    key(w, "reason");
    put(w, s.risk_reason);
    w.EndObject();
    key(w, "page_types");
    w.StartArray();
    for (auto t : s.page_types) put(w, t);
    w.EndArray();
    if (s.extra_field) {
        key(w, "sri");
        put(w, "sha384-" + s.key);
    }
    w.EndObject();
    return {buffer.GetString(), buffer.GetSize()};
}

std::string_view incident_writer::write(const incident_spec& s, std::string_view script_json) {
    buffer_.Clear();
    script_offset_ = std::string_view::npos;
    json_writer w(buffer_);
    w.StartObject();
    if (s.extra == extra_field::first) put_extra_field(w);
    key(w, "id");
    put(w, s.id);
    if (s.oddity != quirk::no_category) {
        key(w, "category");
        put(w, s.category);
    }
    string_member(w, "incident", s.title, s.oddity == quirk::title_null);
    string_member(w, "details", s.details, s.oddity == quirk::details_null);
    key(w, "initiator");
    put(w, s.initiator);
    string_member(w, "first_seen", s.first_seen, s.oddity == quirk::first_seen_null);
    key(w, "last_seen");
    put(w, s.last_seen);
    key(w, "host_domain");
    put(w, s.host_domain);
    key(w, "app_id");
    put(w, s.app_id);
    write_page_types(w, s);
    key(w, "ack_updated_at");
    put(w, s.ack_updated_at);
    if (s.extra == extra_field::middle) put_extra_field(w);
    write_additional_data(w, s);
    if (s.oddity != quirk::no_under_review) {
        key(w, "under_review");
        w.Bool(s.under_review);
    }
    string_member(w, "risk_level", s.risk_level, s.oddity == quirk::risk_level_null);
    if (s.script) {
        key(w, "script");
        // RawValue writes the ':' separator, then the text: the script starts
        // exactly `script_json.size()` bytes before the end.
        w.RawValue(script_json.data(), script_json.size(), rapidjson::kObjectType);
        script_offset_ = buffer_.GetSize() - script_json.size();
    } else if (s.oddity == quirk::script_null) {
        key(w, "script");
        w.Null();
    }
    write_actions(w, s);
    if (s.extra == extra_field::last) put_extra_field(w);
    w.EndObject();
    return {buffer_.GetString(), buffer_.GetSize()};
}

}  // namespace fake_api
