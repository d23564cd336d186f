// parse_account_settings and discovered_pairs over arbitrary bodies (the
// whole input is the body of GET /v1/account-settings).
//
// Checks: a parse either fails with errc::parse and a message free of control
// characters, or every application has a non-empty app_id and every domain
// is non-empty; the pairs discovery selects are sorted, without repeats, and
// each is an enabled application's app_id with one of its domains; an
// exclude of everything selects none, and include/exclude only narrow.

#include "api/account_settings.hpp"
#include "fuzz_check.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

using isync::fuzz::check;
using isync::fuzz::printable;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const auto apps = isync::api::parse_account_settings(body);
    if (!apps) {
        check(apps.error().code == isync::errc::parse, "a refused body is errc::parse");
        const auto& m = apps.error().message;
        check(std::none_of(m.begin(), m.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }),
              "the message carries no control characters", [&] { return printable(m); });
        return 0;
    }
    for (const auto& app : *apps) {
        check(!app.app_id.empty(), "every application has an app_id");
        check(std::none_of(app.domains.begin(), app.domains.end(), [](const auto& d) { return d.empty(); }),
              "no empty domain", [&] { return printable(app.app_id); });
    }
    const auto all = isync::api::discovered_pairs(*apps, {}, {});
    check(std::is_sorted(all.begin(), all.end()) && std::adjacent_find(all.begin(), all.end()) == all.end(),
          "discovered pairs are sorted without repeats");
    for (const auto& p : all) {
        const bool listed = std::any_of(apps->begin(), apps->end(), [&p](const auto& a) {
            return a.enabled && a.app_id == p.app_id &&
                   std::find(a.domains.begin(), a.domains.end(), p.tld) != a.domains.end();
        });
        check(listed, "a discovered pair is an enabled application's app_id and domain",
              [&] { return printable(p.app_id + "/" + p.tld); });
    }
    check(isync::api::discovered_pairs(*apps, {}, {"*/*"}).empty(), "excluding */* selects nothing");
    const auto some = isync::api::discovered_pairs(*apps, {"PX*/*"}, {"*/*.test"});
    check(std::includes(all.begin(), all.end(), some.begin(), some.end()), "include/exclude only narrow");
    return 0;
}
