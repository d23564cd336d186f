#include "api/page_parser.hpp"

#include "util/hash.hpp"
#include "util/text.hpp"
#include "util/timestamp.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>

namespace isync::api {
namespace {

using json = rapidjson::Value;

struct byte_span {
    std::size_t begin;
    std::size_t end;  // one past the closing brace
};

// Forwards SAX events to the Document while (1) refusing hostile nesting and
// (2) recording where each element of the top-level `data` array begins and
// ends, so every incident keeps its exact bytes without re-serialising.
class span_recorder {
public:
    span_recorder(rapidjson::Document& doc, rapidjson::InsituStringStream& stream, std::vector<byte_span>& spans)
        : doc_(doc), stream_(stream), spans_(spans) {}

    bool too_deep() const { return too_deep_; }

    bool Null() { return doc_.Null(); }
    bool Bool(bool b) { return doc_.Bool(b); }
    bool Int(int i) { return doc_.Int(i); }
    bool Uint(unsigned u) { return doc_.Uint(u); }
    bool Int64(std::int64_t i) { return doc_.Int64(i); }
    bool Uint64(std::uint64_t u) { return doc_.Uint64(u); }
    bool Double(double d) { return doc_.Double(d); }
    bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) { return doc_.RawNumber(s, n, copy); }
    bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc_.String(s, n, copy); }

    bool Key(const char* s, rapidjson::SizeType n, bool copy) {
        if (depth_ == 1) root_key_is_data_ = std::string_view(s, n) == "data";
        return doc_.Key(s, n, copy);
    }

    bool StartObject() {
        if (!enter()) return false;
        if (depth_ == 3 && in_data_array_) spans_.push_back({stream_.Tell(), 0});
        return doc_.StartObject();
    }
    bool EndObject(rapidjson::SizeType members) {
        if (depth_ == 3 && in_data_array_) spans_.back().end = stream_.Tell() + 1;
        --depth_;
        return doc_.EndObject(members);
    }
    bool StartArray() {
        if (!enter()) return false;
        if (depth_ == 2 && root_key_is_data_) in_data_array_ = true;
        return doc_.StartArray();
    }
    bool EndArray(rapidjson::SizeType elements) {
        if (depth_ == 2) in_data_array_ = false;
        --depth_;
        return doc_.EndArray(elements);
    }

private:
    bool enter() {
        if (++depth_ > max_json_depth) {
            too_deep_ = true;
            return false;
        }
        return true;
    }

    rapidjson::Document& doc_;
    rapidjson::InsituStringStream& stream_;  // for Tell() (not const in RapidJSON): bytes read, the body's offsets
    std::vector<byte_span>& spans_;
    int depth_ = 0;
    bool root_key_is_data_ = false;
    bool in_data_array_ = false;
    bool too_deep_ = false;
};

// Up to 40 bytes on each side of `offset`, printable, for error messages.
std::string bytes_around(std::string_view body, std::size_t offset) {
    offset = std::min(offset, body.size());
    const std::size_t from = offset > 40 ? offset - 40 : 0;
    return util::printable(body.substr(from, std::min(body.size(), offset + 40) - from), std::string_view::npos,
                           /*ascii_only=*/true);
}

error shape_error(std::string_view body, std::size_t offset, std::string_view path, std::string_view problem) {
    return make_error(errc::parse, fmt::format("malformed page: {}: {} (at byte {}: `{}`)", path, problem, offset,
                                               bytes_around(body, offset)));
}

const json* member(const json& obj, const char* name) {
    if (!obj.IsObject()) return nullptr;
    auto it = obj.FindMember(name);
    if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
    return &it->value;
}

std::string compact_json(const json& v) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    v.Accept(writer);
    return {buffer.GetString(), buffer.GetSize()};
}

// Scalars become text (a number where a string was expected is still data);
// objects and arrays become nothing here (raw_json keeps them).
std::optional<std::string> as_text(const json* v) {
    if (!v) return std::nullopt;
    if (v->IsString()) return std::string(v->GetString(), v->GetStringLength());
    if (v->IsNumber() || v->IsBool()) return compact_json(*v);
    return std::nullopt;
}

std::optional<std::string> text(const json& obj, const char* name) { return as_text(member(obj, name)); }

// Normalised to UTC millis; a value that is not a timestamp is kept as sent.
std::optional<std::string> timestamp(const json& obj, const char* name) {
    auto t = text(obj, name);
    if (!t) return t;
    if (auto normal = util::normalize_iso8601(*t)) return normal;
    return t;
}

std::optional<bool> boolean(const json& obj, const char* name) {
    const json* v = member(obj, name);
    if (v && v->IsBool()) return v->GetBool();
    return std::nullopt;
}

std::optional<double> number(const json& obj, const char* name) {
    const json* v = member(obj, name);
    if (v && v->IsNumber()) return v->GetDouble();
    return std::nullopt;
}

std::vector<std::string> string_list(const json* v) {
    std::vector<std::string> out;
    if (!v || !v->IsArray()) return out;
    for (const auto& e : v->GetArray())
        if (auto s = as_text(&e)) out.push_back(std::move(*s));
    return out;
}

model::script parse_script(const json& s) {
    model::script out;
    out.key = text(s, "key");
    out.id = text(s, "id");
    out.app_id = text(s, "app_id");
    out.host_domain = text(s, "host_domain");
    out.type = text(s, "type");
    out.vendor = text(s, "vendor");
    out.first_seen = timestamp(s, "first_seen");
    out.last_seen = timestamp(s, "last_seen");
    out.users_affected_percentage = number(s, "users_affected_percentage");
    out.ack = boolean(s, "ack");
    if (const json* risk = member(s, "risk")) {
        out.risk_level = text(*risk, "level");
        out.risk_reason = text(*risk, "reason");
    }
    out.page_types = string_list(member(s, "page_types"));
    return out;
}

std::vector<model::page_type> parse_page_types(const json& inc) {
    std::map<std::string, model::page_type> by_name;  // sorted by name, as the model promises
    for (auto& name : string_list(member(inc, "page_types"))) {
        auto& p = by_name[name];
        p.name = name;
        p.listed = true;
    }
    if (const json* per = member(inc, "page_types_per"); per && per->IsObject()) {
        for (const auto& m : per->GetObject()) {
            std::string name(m.name.GetString(), m.name.GetStringLength());
            auto& p = by_name[name];
            p.name = name;
            if (m.value.IsNumber()) p.percentage = m.value.GetDouble();
        }
    }
    std::vector<model::page_type> out;
    out.reserve(by_name.size());
    for (auto& [_, p] : by_name) out.push_back(std::move(p));
    return out;
}

std::vector<model::action> parse_actions(const json* actions) {
    std::vector<model::action> out;
    if (!actions || !actions->IsArray()) return out;
    for (const auto& a : actions->GetArray()) {
        if (!a.IsObject()) continue;
        model::action act;
        act.type = text(a, "type");
        act.subtype = text(a, "subtype");
        act.last_seen = timestamp(a, "last_seen");
        if (const json* args = member(a, "action_args"); args && args->IsObject()) {
            for (const auto& m : args->GetObject()) {
                std::string value = m.value.IsString() ? std::string(m.value.GetString(), m.value.GetStringLength())
                                                       : compact_json(m.value);
                act.args.emplace_back(std::string(m.name.GetString(), m.name.GetStringLength()), std::move(value));
            }
        }
        out.push_back(std::move(act));
    }
    return out;
}

std::vector<model::vulnerability> parse_vulnerabilities(const json& inc) {
    std::vector<model::vulnerability> out;
    const json* additional = member(inc, "additional_data");
    const json* list = additional ? member(*additional, "vulnerabilities") : nullptr;
    if (!list || !list->IsArray()) return out;
    for (const auto& v : list->GetArray()) {
        if (!v.IsObject()) continue;
        out.push_back({text(v, "package"), text(v, "version"), string_list(member(v, "ids"))});
    }
    return out;
}

// The members the schema maps, per object kind; anything else is schema drift.
constexpr std::array<std::string_view, 17> incident_fields{
    "id",          "category", "incident",   "details",        "initiator",      "first_seen",      "last_seen",
    "host_domain", "app_id",   "page_types", "page_types_per", "ack_updated_at", "additional_data", "under_review",
    "risk_level",  "script",   "actions"};
constexpr std::array<std::string_view, 12> script_fields{"users_affected_percentage",
                                                         "ack",
                                                         "key",
                                                         "id",
                                                         "app_id",
                                                         "host_domain",
                                                         "type",
                                                         "vendor",
                                                         "first_seen",
                                                         "last_seen",
                                                         "risk",
                                                         "page_types"};
constexpr std::array<std::string_view, 2> risk_fields{"level", "reason"};
constexpr std::array<std::string_view, 4> action_fields{"type", "subtype", "last_seen", "action_args"};
constexpr std::array<std::string_view, 1> additional_data_fields{"vulnerabilities"};
constexpr std::array<std::string_view, 3> vulnerability_fields{"package", "version", "ids"};

template <std::size_t N>
void unknown_members(const json* obj, const std::array<std::string_view, N>& known, const std::string& path,
                     std::vector<std::string>& out) {
    if (!obj || !obj->IsObject()) return;
    for (const auto& m : obj->GetObject()) {
        const std::string_view name(m.name.GetString(), m.name.GetStringLength());
        if (std::find(known.begin(), known.end(), name) == known.end()) out.push_back(path + "." + std::string(name));
    }
}

template <std::size_t N>
void unknown_members_of_each(const json* list, const std::array<std::string_view, N>& known, const std::string& path,
                             std::vector<std::string>& out) {
    if (!list || !list->IsArray()) return;
    for (const auto& e : list->GetArray()) unknown_members(&e, known, path + "[]", out);
}

std::vector<std::string> unknown_paths(const json& inc) {
    std::vector<std::string> out;
    unknown_members(&inc, incident_fields, "$", out);
    const json* script = member(inc, "script");
    unknown_members(script, script_fields, "$.script", out);
    if (script) unknown_members(member(*script, "risk"), risk_fields, "$.script.risk", out);
    unknown_members_of_each(member(inc, "actions"), action_fields, "$.actions", out);
    const json* additional = member(inc, "additional_data");
    unknown_members(additional, additional_data_fields, "$.additional_data", out);
    if (additional)
        unknown_members_of_each(member(*additional, "vulnerabilities"), vulnerability_fields,
                                "$.additional_data.vulnerabilities", out);
    return out;
}

model::incident parse_incident(const json& inc, std::string id, std::string_view raw) {
    model::incident out;
    out.id = std::move(id);
    out.app_id = text(inc, "app_id");
    out.host_domain = text(inc, "host_domain");
    out.category = text(inc, "category");
    out.title = text(inc, "incident");
    out.details = text(inc, "details");
    out.initiator = text(inc, "initiator");
    out.first_seen = timestamp(inc, "first_seen");
    out.last_seen = timestamp(inc, "last_seen");
    out.ack_updated_at = timestamp(inc, "ack_updated_at");
    out.under_review = boolean(inc, "under_review");
    out.risk_level = text(inc, "risk_level");
    out.page_types = parse_page_types(inc);
    if (const json* s = member(inc, "script"); s && s->IsObject()) out.script = parse_script(*s);
    out.actions = parse_actions(member(inc, "actions"));
    out.vulnerabilities = parse_vulnerabilities(inc);
    out.raw_json.assign(raw);
    return out;
}

}  // namespace

result<model::page> parse_page(std::string_view body, parse_mode mode) {
    // Parsed in place, in a copy of the body: strings are then neither copied
    // onto the reader's stack nor into the document. The copy ends in NULs:
    // the terminator RapidJSON stops at (16 of them, so that RAPIDJSON_SSE2's
    // aligned loads would stay inside it; see CMakeLists.txt for why SSE2 is
    // off). Offsets stay the body's (Tell() counts bytes read).
    std::string work(body.size() + 16, '\0');
    std::copy(body.begin(), body.end(), work.begin());
    rapidjson::Document doc;
    std::vector<byte_span> spans;
    rapidjson::InsituStringStream stream(work.data());
    rapidjson::Reader reader;
    bool too_deep = false;
    auto generate = [&](auto& handler) {
        span_recorder recorder(handler, stream, spans);
        // Iterative: hostile nesting cannot overflow the stack.
        reader.Parse<rapidjson::kParseInsituFlag | rapidjson::kParseIterativeFlag | rapidjson::kParseStopWhenDoneFlag>(
            stream, recorder);
        too_deep = recorder.too_deep();
        // false tells Populate to discard the half-built document.
        return !reader.HasParseError();
    };
    doc.Populate(generate);
    if (too_deep)
        return shape_error(body, reader.GetErrorOffset(), "$",
                           fmt::format("nested deeper than {} levels", max_json_depth));
    if (reader.HasParseError())
        return make_error(errc::parse,
                          fmt::format("malformed page: not valid JSON: {} (at byte {}: `{}`)",
                                      rapidjson::GetParseError_En(reader.GetParseErrorCode()), reader.GetErrorOffset(),
                                      bytes_around(body, reader.GetErrorOffset())));
    // Anything but whitespace after the document is junk, not a second page.
    for (std::size_t i = stream.Tell(); i < body.size(); ++i)
        if (body[i] != ' ' && body[i] != '\n' && body[i] != '\r' && body[i] != '\t')
            return shape_error(body, i, "$", "unexpected bytes after the JSON document");

    if (!doc.IsObject()) return shape_error(body, 0, "$", "expected an object with `paging` and `data`");
    const json* paging = member(doc, "paging");
    const json* count = paging ? member(*paging, "count") : nullptr;
    if (!count) return shape_error(body, 0, "$.paging.count", "missing");
    if (!count->IsInt64() || count->GetInt64() < 0)
        return shape_error(body, 0, "$.paging.count",
                           "expected a non-negative integer, got " + compact_json(*count).substr(0, 40));
    const json* data = member(doc, "data");
    if (!data) return shape_error(body, 0, "$.data", "missing");
    if (!data->IsArray()) return shape_error(body, 0, "$.data", "expected an array");

    model::page page;
    page.count = count->GetInt64();
    if (mode == parse_mode::typed)
        page.incidents.reserve(data->Size());
    else
        page.untyped.reserve(data->Size());
    std::size_t object_index = 0;
    for (rapidjson::SizeType i = 0; i < data->Size(); ++i) {
        const json& inc = (*data)[i];
        // Formatted only for an error: this loop is hot.
        auto path = [i](std::string_view suffix = "") { return fmt::format("$.data[{}]{}", i, suffix); };
        if (!inc.IsObject()) return shape_error(body, 0, path(), "expected an incident object");
        const byte_span span = spans.at(object_index++);
        const json* id = member(inc, "id");
        if (!id || !id->IsString() || id->GetStringLength() == 0)
            return shape_error(body, span.begin, path(".id"), "expected a non-empty string");
        if (mode == parse_mode::untyped) {
            const std::string_view raw = body.substr(span.begin, span.end - span.begin);
            page.untyped.push_back(
                {std::string(id->GetString(), id->GetStringLength()), std::string(raw), util::hash_bytes(raw)});
            continue;
        }
        page.incidents.push_back(parse_incident(inc, std::string(id->GetString(), id->GetStringLength()),
                                                body.substr(span.begin, span.end - span.begin)));
        for (auto& path : unknown_paths(inc)) {
            auto same = [&](const model::unknown_field& f) { return f.json_path == path; };
            if (std::none_of(page.unknown_fields.begin(), page.unknown_fields.end(), same))
                page.unknown_fields.push_back({std::move(path), page.incidents.back().id});
        }
    }
    return page;
}

result<model::page> parse_incident_objects(std::span<const std::string_view> objects) {
    // As the data of a page, so that typing is exactly what parse_page does.
    std::string body = "{\"paging\":{\"count\":0},\"data\":[";
    for (std::size_t i = 0; i < objects.size(); ++i) {
        if (i) body += ',';
        body += objects[i];
    }
    body += "]}";
    return parse_page(body, parse_mode::typed);
}

}  // namespace isync::api
