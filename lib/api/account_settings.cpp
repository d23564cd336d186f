#include "api/account_settings.hpp"

#include "config/pair_pattern.hpp"
#include "util/text.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <fmt/format.h>

#include <algorithm>

namespace isync::api {
namespace {

constexpr unsigned parse_flags = rapidjson::kParseStopWhenDoneFlag;

error shape_error(const std::string& path, std::string_view problem) {
    return make_error(errc::parse, fmt::format("account settings: {}: {}", path, problem));
}

const char* type_name(const rapidjson::Value& v) {
    switch (v.GetType()) {
        case rapidjson::kNullType:
            return "null";
        case rapidjson::kFalseType:
        case rapidjson::kTrueType:
            return "a boolean";
        case rapidjson::kObjectType:
            return "an object";
        case rapidjson::kArrayType:
            return "an array";
        case rapidjson::kStringType:
            return "a string";
        case rapidjson::kNumberType:
            return "a number";
    }
    return "?";
}

result<application> parse_application(const rapidjson::Value& v, const std::string& path) {
    if (!v.IsObject()) return shape_error(path, fmt::format("expected an object, found {}", type_name(v)));
    application app;
    const auto id = v.FindMember("app_id");
    if (id == v.MemberEnd()) return shape_error(path, "no \"app_id\"");
    if (!id->value.IsString() || id->value.GetStringLength() == 0)
        return shape_error(path + ".app_id", fmt::format("expected a non-empty string, found {}",
                                                         id->value.IsString() ? "\"\"" : type_name(id->value)));
    app.app_id.assign(id->value.GetString(), id->value.GetStringLength());
    if (const auto name = v.FindMember("name"); name != v.MemberEnd() && name->value.IsString())
        app.name.assign(name->value.GetString(), name->value.GetStringLength());
    if (const auto enabled = v.FindMember("enabled"); enabled != v.MemberEnd()) {
        if (!enabled->value.IsBool())
            return shape_error(path + ".enabled",
                               fmt::format("expected true or false, found {}", type_name(enabled->value)));
        app.enabled = enabled->value.GetBool();
    }
    const auto domains = v.FindMember("hostDomains");
    if (domains == v.MemberEnd() || domains->value.IsNull()) return app;
    if (!domains->value.IsArray())
        return shape_error(path + ".hostDomains",
                           fmt::format("expected an array, found {}", type_name(domains->value)));
    for (rapidjson::SizeType i = 0; i < domains->value.Size(); ++i) {
        const auto& d = domains->value[i];
        const std::string dpath = fmt::format("{}.hostDomains[{}]", path, i);
        if (!d.IsObject()) return shape_error(dpath, fmt::format("expected an object, found {}", type_name(d)));
        const auto domain = d.FindMember("domain");
        if (domain == d.MemberEnd()) return shape_error(dpath, "no \"domain\"");
        if (!domain->value.IsString() || domain->value.GetStringLength() == 0)
            return shape_error(dpath + ".domain",
                               fmt::format("expected a non-empty string, found {}",
                                           domain->value.IsString() ? "\"\"" : type_name(domain->value)));
        app.domains.emplace_back(domain->value.GetString(), domain->value.GetStringLength());
    }
    return app;
}

}  // namespace

std::string account_settings_target(const config::endpoint& ep) { return ep.path_prefix + "/v1/account-settings"; }

result<std::vector<application>> parse_account_settings(std::string_view body) {
    rapidjson::Document doc;
    doc.Parse<parse_flags>(body.data(), body.size());
    if (doc.HasParseError())
        return make_error(
            errc::parse,
            fmt::format("account settings: not JSON at byte {}: {} (the body begins \"{}\")", doc.GetErrorOffset(),
                        rapidjson::GetParseError_En(doc.GetParseError()), util::printable(body, 80)));
    if (!doc.IsObject()) return shape_error("$", fmt::format("expected an object, found {}", type_name(doc)));
    const auto apps = doc.FindMember("applications");
    if (apps == doc.MemberEnd()) return shape_error("$", "no \"applications\" array");
    if (!apps->value.IsArray())
        return shape_error("$.applications", fmt::format("expected an array, found {}", type_name(apps->value)));
    std::vector<application> out;
    out.reserve(apps->value.Size());
    for (rapidjson::SizeType i = 0; i < apps->value.Size(); ++i) {
        auto app = parse_application(apps->value[i], fmt::format("$.applications[{}]", i));
        if (!app) return app.error();
        out.push_back(std::move(*app));
    }
    return out;
}

std::vector<config::pair> discovered_pairs(const std::vector<application>& apps,
                                           const std::vector<std::string>& include,
                                           const std::vector<std::string>& exclude) {
    std::vector<config::pair> out;
    for (const auto& app : apps) {
        if (!app.enabled) continue;
        for (const auto& domain : app.domains) {
            config::pair p{app.app_id, domain};
            if (config::pair_selected(p, include, exclude)) out.push_back(std::move(p));
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

}  // namespace isync::api
