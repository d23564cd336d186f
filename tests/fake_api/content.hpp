#pragma once
// What a fake incident says, decided once and rendered twice: as the JSON the
// server sends (render_json.hpp) and as the model the daemon should parse out
// of it (render_model.hpp). Everything is a pure function of the dataset seed
// and the incident's index, plus the few facts the dataset stores per incident
// (pair, script, first/last seen, version), so a million incidents need not
// be kept as structs.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fake_api {

// The three ways HUMAN writes a timestamp: `...:00Z`, `...:00.084Z`, `...:00.084+02:00`.
enum class ts_form : std::uint8_t { seconds_z, millis_z, millis_offset };

struct ts_style {
    ts_form form = ts_form::millis_z;
    std::int16_t offset_minutes = 0;  // for millis_offset
};

// The timestamp fields whose style is drawn independently.
enum class ts_field : std::uint8_t {
    first_seen,
    last_seen,
    ack_updated_at,
    action,
    script_first_seen,
    script_last_seen
};

// The style of `field` for incident (or script) `index`.
ts_style style_for(std::uint64_t seed, std::uint64_t index, ts_field field);

// The instant a style can express: seconds_z drops the milliseconds, so an
// instant stored for filtering must be quantized the same way as it is written.
std::int64_t quantize(std::int64_t ms, ts_style style);

// `ms` written in `style` (the instant is quantized first).
std::string render_timestamp(std::int64_t ms, ts_style style);

// Real-world oddities: at most one per incident, on ~2% of incidents.
enum class quirk : std::uint8_t {
    none,
    details_null,
    no_script,
    script_null,
    no_actions,
    risk_level_null,
    no_page_types_per,
    no_additional_data,
    no_category,
    first_seen_null,
    no_under_review,
    title_null,
    page_types_null,
};

// Where an unknown extra field (`"new_vendor_field":{"x":1}`) goes, if anywhere.
enum class extra_field : std::uint8_t { none, first, middle, last };

struct script_spec {
    std::string key;
    std::string id;  // the script's URL
    std::string app_id;
    std::string host_domain;
    std::string_view type;
    std::string_view vendor;
    bool vendor_null = false;
    std::string first_seen;
    std::string last_seen;
    double users_affected_percentage = 0;
    bool ack = false;
    std::string_view risk_level;
    std::string_view risk_reason;
    std::vector<std::string_view> page_types;
    bool extra_field = false;  // an unknown `"sri"` member
};

struct page_share {
    std::string_view name;
    double value = 0;
    bool integral = false;  // written as an integer (`25`) rather than `12.5`
};

struct action_spec {
    std::string_view type;
    std::string_view subtype;
    std::string last_seen;
    std::vector<std::pair<std::string, std::string>> args;
};

struct vulnerability_spec {
    std::string_view package;
    std::string version;
    std::vector<std::string> ids;
};

struct incident_spec {
    std::string id;
    std::string_view category;
    std::string_view title;
    std::string details;
    std::string initiator;
    std::string first_seen;
    std::string last_seen;
    std::string app_id;
    std::string host_domain;
    std::vector<std::string_view> page_types;
    std::vector<page_share> page_types_per;
    std::string ack_updated_at;
    std::vector<vulnerability_spec> vulnerabilities;
    bool additional_data_empty = false;  // `{}` rather than `{"vulnerabilities":[]}`
    bool under_review = false;
    std::string_view risk_level;
    const script_spec* script = nullptr;  // nullptr: no script object
    std::vector<action_spec> actions;
    quirk oddity = quirk::none;
    extra_field extra = extra_field::none;
};

// Where an incident comes from: drawn once at generation (or arrival, in live mode).
struct incident_origin {
    std::uint32_t pair = 0;
    std::uint32_t script_slot = 0;  // index into the pair's script pool
    std::int64_t last_seen_ms = 0;
    std::int64_t first_seen_gap_ms = 0;  // first_seen = last_seen - gap
};

incident_origin draw_origin(std::uint64_t seed, std::uint64_t index, std::size_t pair_count, std::int64_t start_ms,
                            std::int64_t end_ms);

// The facts the dataset stores per incident; the rest is derived.
struct incident_facts {
    std::uint64_t seed = 0;
    std::uint64_t index = 0;
    std::string id;
    std::string_view app_id;
    std::string_view host_domain;
    std::int64_t first_seen_ms = 0;
    std::int64_t last_seen_ms = 0;
    std::uint32_t version = 0;  // live-mode changes so far
    const script_spec* script = nullptr;
};

incident_spec make_incident_spec(const incident_facts& facts);

// Script `slot` of pair `pair`: same content every time it is used.
script_spec make_script_spec(std::uint64_t seed, std::uint32_t pair, std::uint32_t slot, std::string_view app_id,
                             std::string_view host_domain, std::int64_t start_ms, std::int64_t end_ms);

}  // namespace fake_api
