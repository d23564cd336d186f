#pragma once
// An incident_spec as the typed model the daemon's parser should produce from
// the JSON that render_json.hpp writes for it.

#include "fake_api/content.hpp"
#include "model/incident.hpp"

#include <string>

namespace fake_api {

isync::model::script to_model(const script_spec& script);

// `raw_json` is the exact text served for this incident.
isync::model::incident to_model(const incident_spec& spec, std::string raw_json);

}  // namespace fake_api
