#include "store/hashing.hpp"

#include "util/hash.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace isync::store {
namespace {

void add_optional(util::content_hasher& h, const std::optional<std::string>& v) {
    if (v)
        h.add(*v);
    else
        h.add_separator();
}

void add_optional(util::content_hasher& h, const std::optional<bool>& v) { h.add(std::int64_t{v ? (*v ? 1 : 0) : 2}); }

void add_optional(util::content_hasher& h, const std::optional<double>& v) {
    if (v)
        h.add(std::string_view(reinterpret_cast<const char*>(&*v), sizeof *v));
    else
        h.add_separator();
}

}  // namespace

std::int64_t script_hash(const model::script& s) {
    util::content_hasher h;
    for (const auto* f : {&s.key, &s.id, &s.app_id, &s.host_domain, &s.type, &s.vendor, &s.first_seen, &s.last_seen,
                          &s.risk_level, &s.risk_reason})
        add_optional(h, *f);
    add_optional(h, s.users_affected_percentage);
    add_optional(h, s.ack);
    for (const auto& p : s.page_types) h.add(p);
    return h.value();
}

model::incident_hashes hashes_of(const model::incident& inc) {
    return {util::hash_bytes(inc.raw_json), substance_hash(inc), inc.script ? script_hash(*inc.script) : 0};
}

std::int64_t substance_hash(const model::incident& inc) {
    util::content_hasher h;
    h.add(inc.id);
    for (const auto* f : {&inc.app_id, &inc.host_domain, &inc.category, &inc.title, &inc.details, &inc.initiator,
                          &inc.first_seen, &inc.ack_updated_at, &inc.risk_level})
        add_optional(h, *f);
    add_optional(h, inc.under_review);
    for (const auto& p : inc.page_types) {
        h.add(p.name);
        h.add(std::int64_t{p.listed});
        add_optional(h, p.percentage);
    }
    if (inc.script) {
        model::script s = *inc.script;
        s.last_seen.reset();
        h.add(script_hash(s));
    }
    for (const auto& a : inc.actions) {
        add_optional(h, a.type);
        add_optional(h, a.subtype);
        for (const auto& [k, v] : a.args) {
            h.add(k);
            h.add(v);
        }
        h.add_separator();
    }
    for (const auto& v : inc.vulnerabilities) {
        add_optional(h, v.package);
        add_optional(h, v.version);
        for (const auto& id : v.ids) h.add(id);
        h.add_separator();
    }
    return h.value();
}

std::optional<std::string> script_share_key(const model::script& s) {
    if (s.key) return *s.key;
    if (s.id) return "id:" + *s.id;
    return std::nullopt;
}

}  // namespace isync::store
