// parse_page over arbitrary bytes: the response body of GET /v1/incidents is
// the one input an attacker on the network path (or a broken gateway) fully
// controls. Beyond "no crash, no leak, no hang" it checks what the header and
// the model promise about a page that is accepted.

#include "api/page_parser.hpp"
#include "fuzz_check.hpp"
#include "util/timestamp.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using isync::fuzz::check;
using isync::fuzz::printable;

namespace {

// A timestamp the parser could read is stored normalised, and normalising it
// again changes nothing.
void check_timestamp(const std::optional<std::string>& t, std::string_view field) {
    if (!t || !isync::util::parse_iso8601_ms(*t)) return;
    check(isync::util::normalize_iso8601(*t) == *t, "a parseable timestamp is stored normalised",
          [&] { return std::string(field) + " = " + printable(*t); });
}

void check_incident(std::string_view body, const isync::model::incident& inc) {
    check(!inc.id.empty(), "every accepted incident has a non-empty id");

    // raw_json: the incident object's exact bytes, taken from the body.
    const std::string& raw = inc.raw_json;
    check(raw.size() >= 2 && raw.front() == '{' && raw.back() == '}', "raw_json is one JSON object, braces included",
          [&] { return printable(raw.substr(0, 200)); });
    check(body.find(raw) != std::string_view::npos, "raw_json is a slice of the body",
          [&] { return printable(raw.substr(0, 200)); });

    // Those bytes alone, in a page of their own, give the same incident: the
    // span recorder cut at the right braces.
    const std::string alone = R"({"paging":{"count":1},"data":[)" + raw + "]}";
    const auto again = isync::api::parse_page(alone);
    check(again.has_value(), "raw_json parses again on its own",
          [&] { return again.error().message + "\nraw_json: " + printable(raw.substr(0, 200)); });
    check(again->incidents.size() == 1 && again->incidents.front() == inc,
          "raw_json parsed on its own gives the same incident", [&] { return printable(raw.substr(0, 200)); });

    check_timestamp(inc.first_seen, "first_seen");
    check_timestamp(inc.last_seen, "last_seen");
    check_timestamp(inc.ack_updated_at, "ack_updated_at");
    if (inc.script) {
        check_timestamp(inc.script->first_seen, "script.first_seen");
        check_timestamp(inc.script->last_seen, "script.last_seen");
    }
    for (const auto& a : inc.actions) check_timestamp(a.last_seen, "actions[].last_seen");

    // The model promises page types sorted by name, one row per name.
    const auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
    check(std::is_sorted(inc.page_types.begin(), inc.page_types.end(), by_name), "page_types sorted by name");
    check(std::adjacent_find(inc.page_types.begin(), inc.page_types.end(),
                             [](const auto& a, const auto& b) { return a.name == b.name; }) == inc.page_types.end(),
          "page_types has one row per name");
}

// The untyped parse (its SAX fast path, or the DOM when the page is unusual)
// must accept exactly what the typed parse accepts, refuse with the same
// words, and cut out the same incidents.
void check_untyped_agrees(std::string_view body, const isync::result<isync::model::page>& typed) {
    const auto untyped = isync::api::parse_page(body, isync::api::parse_mode::untyped);
    check(untyped.has_value() == typed.has_value(), "the untyped parse accepts exactly what the typed one accepts",
          [&] { return typed ? untyped.error().message : typed.error().message; });
    if (!typed) {
        check(untyped.error().message == typed.error().message, "both parses refuse with the same message",
              [&] { return untyped.error().message + "\nvs\n" + typed.error().message; });
        return;
    }
    check(untyped->count == typed->count && untyped->untyped.size() == typed->incidents.size(),
          "both parses see the same count and incidents");
    for (std::size_t i = 0; i < typed->incidents.size(); ++i) {
        const auto& raw = untyped->untyped[i];
        const auto& inc = typed->incidents[i];
        check(raw.id == inc.id && raw.raw_json == inc.raw_json, "the untyped parse cuts out the same incident",
              [&] { return printable(raw.id) + " vs " + printable(inc.id); });
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const auto page = isync::api::parse_page(body);
    check_untyped_agrees(body, page);
    if (!page) {
        check(page.error().code == isync::errc::parse, "a refused page is errc::parse");
        check(page.error().message.rfind("malformed page: ", 0) == 0, "a refusal says the page is malformed",
              [&] { return page.error().message; });
        return 0;
    }
    check(page->count >= 0, "paging.count is never negative");
    for (const auto& inc : page->incidents) check_incident(body, inc);
    for (std::size_t i = 0; i < page->unknown_fields.size(); ++i) {
        const auto& f = page->unknown_fields[i];
        check(f.json_path.rfind("$.", 0) == 0, "an unknown field's path starts at $",
              [&] { return printable(f.json_path); });
        for (std::size_t j = 0; j < i; ++j)
            check(page->unknown_fields[j].json_path != f.json_path, "unknown field paths are distinct per page",
                  [&] { return printable(f.json_path); });
    }
    return 0;
}
