#pragma once
// The hashes the store compares to decide what to write. Every database holds
// their values (incidents.content_hash and substance_hash, scripts.content_hash),
// so they must never change: tests/unit/store/hash_pin_test.cpp pins them.

#include "model/incident.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace isync::store {

// The hash over an incident's content except its `last_seen` timestamps: when
// it changes, `content_changed_at` moves ("seen again" is not a change).
std::int64_t substance_hash(const model::incident& inc);

// The hash over every field of a script.
std::int64_t script_hash(const model::script& s);

// The key a script is shared by across incidents: its `key`, else "id:" +
// its id; nullopt when it has neither (it cannot be shared safely).
std::optional<std::string> script_share_key(const model::script& s);

// All three hashes of an incident (what upsert compares).
model::incident_hashes hashes_of(const model::incident& inc);

}  // namespace isync::store
