#include "fake_api/account.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

namespace fake_api {

std::vector<application> applications_of(const std::vector<isync::config::pair>& pairs) {
    std::vector<application> out;
    for (const auto& p : pairs) {
        auto app = std::find_if(out.begin(), out.end(), [&p](const application& a) { return a.app_id == p.app_id; });
        if (app == out.end()) app = out.insert(out.end(), application{p.app_id, "Simulated " + p.app_id, true, {}});
        app->domains.push_back(p.tld);
    }
    out.push_back(application{"PXsimoff", "Switched off", false, {"disabled.example"}});
    return out;
}

std::string render_account_settings(const std::vector<application>& apps) {
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> w(out);
    w.StartObject();
    w.Key("applications");
    w.StartArray();
    for (const auto& a : apps) {
        w.StartObject();
        w.Key("app_id");
        w.String(a.app_id);
        w.Key("name");
        w.String(a.name);
        w.Key("enabled");
        w.Bool(a.enabled);
        w.Key("hostDomains");
        w.StartArray();
        for (const auto& d : a.domains) {
            w.StartObject();
            w.Key("domain");
            w.String(d);
            w.Key("last_created_baseline");
            w.String("2023-01-01T00:00:00Z");
            w.EndObject();
        }
        w.EndArray();
        w.Key("csm_enabled");
        w.Bool(true);
        w.Key("sensor_version");
        w.String("4.1.1");
        w.Key("muvs");
        w.StartObject();
        w.Key("2022-08");
        w.Uint(8698227);
        w.EndObject();
        w.Key("account_name");
        w.String("Simulated account");
        w.EndObject();
    }
    w.EndArray();
    w.Key("accountName");
    w.String("Simulated account");
    w.Key("alerts");
    w.StartArray();
    w.EndArray();
    w.EndObject();
    return {out.GetString(), out.GetSize()};
}

}  // namespace fake_api
