#pragma once
// The fake API's incidents: generated deterministically from a seed, held
// compactly (the served JSON plus a 48-byte record each; the typed model is
// derived on demand), indexed per (appId, tld) pair in serve order.
//
// Not thread-safe: the server guards its dataset with its own mutex.

#include "config/config.hpp"
#include "fake_api/content.hpp"
#include "fake_api/text_arena.hpp"
#include "model/incident.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fake_api {

class incident_writer;

struct dataset_options {
    std::uint64_t seed = 1;
    std::size_t incidents = 1000;
    std::vector<isync::config::pair> pairs{};  // empty: one pair, PXsim000 / site000.example
    std::int64_t start_ms = 1674259200000;     // 2023-01-21T00:00:00Z; last_seen is uniform in [start_ms, end_ms)
    std::int64_t end_ms = 1674345600000;       // 2023-01-22T00:00:00Z
};

// `app_id` PXsim%03d and `tld` site%03d.example for n = 0..count-1: the sim's generated pairs.
std::vector<isync::config::pair> sim_pairs(std::size_t count);

// What one live-mode step did.
struct live_step {
    std::vector<std::size_t> changed;  // existing incidents that moved to `now` (may repeat)
    std::vector<std::size_t> added;    // new incidents
};

class dataset {
public:
    // Generates the incidents. Throws std::invalid_argument when end_ms <= start_ms,
    // or when a pair repeats, or when there are more than 2^32 - 1 incidents.
    explicit dataset(dataset_options options);

    const dataset_options& options() const noexcept { return options_; }
    std::size_t size() const noexcept { return records_.size(); }
    const std::vector<isync::config::pair>& pairs() const noexcept { return options_.pairs; }
    std::size_t script_count() const noexcept { return scripts_.size(); }

    // The pair's index, or nullopt when the dataset has no such pair.
    std::optional<std::size_t> pair_index(std::string_view app_id, std::string_view tld) const;

    // Incident `i` (i < size()).
    std::string id(std::size_t i) const;
    std::size_t pair_of(std::size_t i) const { return records_[i].pair; }
    std::int64_t first_seen_ms(std::size_t i) const { return records_[i].first_seen_ms; }
    std::int64_t last_seen_ms(std::size_t i) const { return records_[i].last_seen_ms; }
    std::uint32_t version(std::size_t i) const { return records_[i].version; }

    // The index of the incident with this id, or nullopt.
    std::optional<std::size_t> find(std::string_view id) const;

    // The exact JSON served for incident `i`.
    std::string json(std::size_t i) const;
    void append_json(std::size_t i, std::string& out) const;
    std::size_t json_size(std::size_t i) const;

    // What the daemon's parser must produce from json(i).
    isync::model::incident expected_incident(std::size_t i) const;

    // The pair's incidents with from_ms <= last_seen < to_ms, in serve order
    // (last_seen descending, then id ascending). Empty when from_ms >= to_ms.
    // Valid until the dataset changes.
    std::span<const std::uint32_t> window(std::size_t pair, std::int64_t from_ms, std::int64_t to_ms) const;

    // Incidents of any of `pairs` in the window.
    std::size_t count(std::span<const std::size_t> pairs, std::int64_t from_ms, std::int64_t to_ms) const;

    // Positions [skip, skip + take) of the serve order over `pairs` in the window.
    std::vector<std::uint32_t> page(std::span<const std::size_t> pairs, std::int64_t from_ms, std::int64_t to_ms,
                                    std::size_t skip, std::size_t take) const;

    // Live mode: `changes` existing incidents move to `now_ms` (new version:
    // risk level moves on, one action added), then `changes` new ones arrive
    // with last_seen = now_ms. Which incidents change is deterministic.
    live_step step_live(std::size_t changes, std::int64_t now_ms);

    // Heap bytes held (records, indexes, JSON text, scripts); approximate.
    std::size_t memory_bytes() const;

private:
    static constexpr std::uint32_t no_script = 0xffffffffu;

    struct record {
        std::int64_t first_seen_ms;
        std::int64_t last_seen_ms;
        text_arena::ref json;     // the JSON with the script object cut out: head, then tail
        std::uint32_t head_size;  // bytes before the spliced script (all of it when none)
        std::uint32_t tail_size;  // bytes after it
        std::uint32_t pair;
        std::uint32_t script;  // the script the incident was drawn with
        std::uint32_t version;
        bool spliced;  // the JSON holds the script object
    };

    incident_facts facts(std::size_t i) const;
    incident_spec spec(std::size_t i) const;
    void generate(std::size_t begin, std::size_t end, text_arena& into);
    void render(std::size_t i, incident_writer& writer, text_arena& into);
    void place(std::size_t i, std::int64_t first_seen_ms, std::int64_t last_seen_ms, std::uint32_t pair,
               std::uint32_t script);
    std::size_t arrive(std::int64_t now_ms);
    void change(std::size_t i, std::int64_t now_ms);
    bool serves_before(std::uint32_t a, std::uint32_t b) const;
    void unlink(std::size_t i);
    void link(std::size_t i);

    dataset_options options_;
    std::size_t pool_size_ = 1;  // scripts per pair
    std::vector<script_spec> scripts_;
    std::vector<std::string> script_json_;
    std::vector<record> records_;
    std::vector<std::vector<std::uint32_t>> order_;  // per pair, in serve order
    text_arena text_;
    std::uint64_t live_steps_ = 0;
};

}  // namespace fake_api
