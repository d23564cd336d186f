#pragma once
// An incident_spec as the compact JSON the server sends, written by RapidJSON's
// Writer so the text is byte-for-byte what a RapidJSON writer produces.

#include "fake_api/content.hpp"

#include <rapidjson/stringbuffer.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace fake_api {

// The script object's JSON (scripts are shared, so it is written once per script).
std::string write_script_json(const script_spec& script);

class incident_writer {
public:
    // The incident's JSON, valid until the next call. `script_json` is spliced
    // in verbatim as the `script` value when the spec has a script.
    std::string_view write(const incident_spec& spec, std::string_view script_json);

    // Where the spliced script JSON starts in the last text; npos when there was none.
    std::size_t script_offset() const noexcept { return script_offset_; }

private:
    rapidjson::StringBuffer buffer_;
    std::size_t script_offset_ = std::string_view::npos;
};

}  // namespace fake_api
