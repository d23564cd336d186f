#include "fake_api/dataset.hpp"

#include "fake_api/random.hpp"
#include "fake_api/render_json.hpp"
#include "fake_api/render_model.hpp"
#include "fake_api/text_format.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>
#include <stdexcept>
#include <thread>

namespace fake_api {
namespace {

constexpr std::uint64_t salt_live = 0x6c697665;

// The id's first 8 hex digits: first_seen in epoch seconds, as in a MongoDB
// ObjectId (the 24-hex ids in HUMAN's example look like ObjectIds).
std::uint32_t id_prefix(std::int64_t first_seen_ms) {
    const auto seconds = first_seen_ms / 1000;
    return static_cast<std::uint32_t>(std::clamp<std::int64_t>(seconds, 0, std::numeric_limits<std::uint32_t>::max()));
}

std::optional<std::uint64_t> parse_hex(std::string_view text) {
    std::uint64_t value = 0;
    for (char c : text) {
        value <<= 4;
        if (c >= '0' && c <= '9')
            value |= static_cast<std::uint64_t>(c - '0');
        else if (c >= 'a' && c <= 'f')
            value |= static_cast<std::uint64_t>(c - 'a' + 10);
        else
            return std::nullopt;
    }
    return value;
}

}  // namespace

std::vector<isync::config::pair> sim_pairs(std::size_t count) {
    std::vector<isync::config::pair> out;
    for (std::size_t n = 0; n < count; ++n) {
        char app[32], tld[48];
        std::snprintf(app, sizeof app, "PXsim%03zu", n);
        std::snprintf(tld, sizeof tld, "site%03zu.example", n);
        out.push_back({app, tld});
    }
    return out;
}

dataset::dataset(dataset_options options) : options_(std::move(options)) {
    if (options_.pairs.empty()) options_.pairs = sim_pairs(1);
    if (options_.end_ms <= options_.start_ms) throw std::invalid_argument("dataset: end_ms must be after start_ms");
    if (options_.incidents >= no_script) throw std::invalid_argument("dataset: too many incidents");
    if (std::set(options_.pairs.begin(), options_.pairs.end()).size() != options_.pairs.size())
        throw std::invalid_argument("dataset: a pair is listed twice");

    const auto pair_count = options_.pairs.size();
    pool_size_ = std::max<std::size_t>(1, options_.incidents / pair_count / 20);
    scripts_.reserve(pair_count * pool_size_);
    for (std::uint32_t p = 0; p < pair_count; ++p) {
        for (std::uint32_t slot = 0; slot < pool_size_; ++slot) {
            scripts_.push_back(make_script_spec(options_.seed, p, slot, options_.pairs[p].app_id, options_.pairs[p].tld,
                                                options_.start_ms, options_.end_ms));
            script_json_.push_back(write_script_json(scripts_.back()));
        }
    }

    // Every incident is a function of (seed, index), so ranges generate in
    // parallel, each into its own arena; the arenas are joined afterwards.
    records_.resize(options_.incidents);
    // A worker per 100k incidents at most: each leaves a part-filled 4 MiB chunk behind.
    const std::size_t workers = std::clamp<std::size_t>(
        std::min<std::size_t>(options_.incidents / 100'000, std::thread::hardware_concurrency()), 1, 8);
    std::vector<text_arena> arenas(workers);
    std::vector<std::exception_ptr> failures(workers);
    std::vector<std::thread> threads;
    auto bound = [&](std::size_t w) { return options_.incidents * w / workers; };
    for (std::size_t w = 1; w < workers; ++w) {
        threads.emplace_back([&, w] {
            try {
                generate(bound(w), bound(w + 1), arenas[w]);
            } catch (...) {
                failures[w] = std::current_exception();
            }
        });
    }
    generate(bound(0), bound(1), arenas[0]);
    for (auto& t : threads) t.join();
    for (const auto& f : failures)
        if (f) std::rethrow_exception(f);
    for (std::size_t w = 0; w < workers; ++w) {
        const auto offset = text_.absorb(std::move(arenas[w]));
        for (std::size_t i = bound(w); i < bound(w + 1); ++i) records_[i].json += offset;
    }

    // Sorting once beats inserting a million times.
    order_.resize(pair_count);
    for (std::uint32_t i = 0; i < records_.size(); ++i) order_[records_[i].pair].push_back(i);
    for (auto& v : order_)
        std::sort(v.begin(), v.end(), [this](std::uint32_t a, std::uint32_t b) { return serves_before(a, b); });
}

std::optional<std::size_t> dataset::pair_index(std::string_view app_id, std::string_view tld) const {
    for (std::size_t p = 0; p < options_.pairs.size(); ++p)
        if (options_.pairs[p].app_id == app_id && options_.pairs[p].tld == tld) return p;
    return std::nullopt;
}

std::string dataset::id(std::size_t i) const {
    std::string out;
    out.reserve(24);
    append_hex(out, id_prefix(records_[i].first_seen_ms), 8);
    append_hex(out, id_permutation(options_.seed).forward(i), 16);
    return out;
}

std::optional<std::size_t> dataset::find(std::string_view id) const {
    if (id.size() != 24) return std::nullopt;
    const auto low = parse_hex(id.substr(8));
    if (!low) return std::nullopt;
    const auto i = id_permutation(options_.seed).inverse(*low);
    if (i >= records_.size() || this->id(i) != id) return std::nullopt;
    return static_cast<std::size_t>(i);
}

void dataset::append_json(std::size_t i, std::string& out) const {
    const record& r = records_[i];
    const auto text = text_.view(r.json, r.head_size + r.tail_size);
    out.append(text.substr(0, r.head_size));
    if (r.spliced) out.append(script_json_[r.script]);
    out.append(text.substr(r.head_size));
}

std::string dataset::json(std::size_t i) const {
    std::string out;
    out.reserve(json_size(i));
    append_json(i, out);
    return out;
}

std::size_t dataset::json_size(std::size_t i) const {
    const record& r = records_[i];
    return r.head_size + r.tail_size + (r.spliced ? script_json_[r.script].size() : 0);
}

isync::model::incident dataset::expected_incident(std::size_t i) const { return to_model(spec(i), json(i)); }

std::span<const std::uint32_t> dataset::window(std::size_t pair, std::int64_t from_ms, std::int64_t to_ms) const {
    const auto& v = order_[pair];
    if (from_ms >= to_ms) return {};
    // Serve order is last_seen descending: the window is one contiguous run.
    const auto begin =
        std::partition_point(v.begin(), v.end(), [&](std::uint32_t i) { return records_[i].last_seen_ms >= to_ms; });
    const auto end =
        std::partition_point(begin, v.end(), [&](std::uint32_t i) { return records_[i].last_seen_ms >= from_ms; });
    return {begin, end};
}

std::size_t dataset::count(std::span<const std::size_t> pairs, std::int64_t from_ms, std::int64_t to_ms) const {
    std::size_t n = 0;
    for (auto p : pairs) n += window(p, from_ms, to_ms).size();
    return n;
}

std::vector<std::uint32_t> dataset::page(std::span<const std::size_t> pairs, std::int64_t from_ms, std::int64_t to_ms,
                                         std::size_t skip, std::size_t take) const {
    std::vector<std::uint32_t> out;
    if (pairs.size() == 1) {
        const auto w = window(pairs[0], from_ms, to_ms);
        if (skip >= w.size()) return out;
        const auto n = std::min(take, w.size() - skip);
        out.assign(w.begin() + static_cast<std::ptrdiff_t>(skip), w.begin() + static_cast<std::ptrdiff_t>(skip + n));
        return out;
    }
    // Several pairs: merge their runs. Queries over many pairs are rare (the
    // daemon asks one pair at a time), so a linear pick per step is enough.
    std::vector<std::span<const std::uint32_t>> runs;
    for (auto p : pairs) runs.push_back(window(p, from_ms, to_ms));
    for (std::size_t position = 0; out.size() < take; ++position) {
        std::span<const std::uint32_t>* best = nullptr;
        for (auto& run : runs)
            if (!run.empty() && (!best || serves_before(run.front(), best->front()))) best = &run;
        if (!best) break;
        if (position >= skip) out.push_back(best->front());
        *best = best->subspan(1);
    }
    return out;
}

live_step dataset::step_live(std::size_t changes, std::int64_t now_ms) {
    live_step step;
    for (std::size_t k = 0; k < changes && !records_.empty(); ++k) {
        rng r(hash_of(options_.seed ^ salt_live, live_steps_++));
        const auto i = static_cast<std::size_t>(r.below(records_.size()));
        change(i, now_ms);
        step.changed.push_back(i);
    }
    for (std::size_t k = 0; k < changes; ++k) step.added.push_back(arrive(now_ms));
    return step;
}

std::size_t dataset::memory_bytes() const {
    std::size_t n =
        text_.capacity_bytes() + records_.capacity() * sizeof(record) + scripts_.capacity() * sizeof(script_spec);
    for (const auto& v : order_) n += v.capacity() * sizeof(std::uint32_t);
    for (const auto& s : script_json_) n += s.capacity();
    return n;
}

incident_facts dataset::facts(std::size_t i) const {
    const record& r = records_[i];
    const auto& pair = options_.pairs[r.pair];
    return {options_.seed,      i, id(i), pair.app_id, pair.tld, r.first_seen_ms, r.last_seen_ms, r.version,
            &scripts_[r.script]};
}

incident_spec dataset::spec(std::size_t i) const { return make_incident_spec(facts(i)); }

void dataset::generate(std::size_t begin, std::size_t end, text_arena& into) {
    incident_writer writer;
    for (std::size_t i = begin; i < end; ++i) {
        const auto o = draw_origin(options_.seed, i, options_.pairs.size(), options_.start_ms, options_.end_ms);
        place(i, o.last_seen_ms - o.first_seen_gap_ms, o.last_seen_ms, o.pair,
              static_cast<std::uint32_t>(o.pair * pool_size_ + o.script_slot % pool_size_));
        render(i, writer, into);
    }
}

void dataset::render(std::size_t i, incident_writer& writer, text_arena& into) {
    const auto s = spec(i);
    record& r = records_[i];
    const std::string_view script = s.script ? std::string_view(script_json_[r.script]) : std::string_view();
    const auto text = writer.write(s, script);
    // The shared script object is cut out and spliced back when serving: it is
    // a third of an incident's JSON and the same for ~20 incidents.
    r.spliced = writer.script_offset() != std::string_view::npos;
    const auto head = r.spliced ? text.substr(0, writer.script_offset()) : text;
    const auto tail = r.spliced ? text.substr(writer.script_offset() + script.size()) : std::string_view();
    r.json = into.append(head, tail);
    r.head_size = static_cast<std::uint32_t>(head.size());
    r.tail_size = static_cast<std::uint32_t>(tail.size());
}

void dataset::place(std::size_t i, std::int64_t first_seen_ms, std::int64_t last_seen_ms, std::uint32_t pair,
                    std::uint32_t script) {
    // Quantize to what the written timestamps can express, so filtering and
    // the text agree; first_seen is derived from the quantized last_seen so it
    // can never come out later.
    const auto last = quantize(last_seen_ms, style_for(options_.seed, i, ts_field::last_seen));
    const auto first = quantize(std::min(first_seen_ms - last_seen_ms + last, last),
                                style_for(options_.seed, i, ts_field::first_seen));
    records_[i] = {first, last, 0, 0, 0, pair, script, 0, false};
}

std::size_t dataset::arrive(std::int64_t now_ms) {
    const auto i = records_.size();
    const auto o = draw_origin(options_.seed, i, options_.pairs.size(), options_.start_ms, options_.end_ms);
    records_.emplace_back();
    place(i, now_ms - o.first_seen_gap_ms, now_ms, o.pair,
          static_cast<std::uint32_t>(o.pair * pool_size_ + o.script_slot % pool_size_));
    incident_writer writer;
    render(i, writer, text_);
    link(i);
    return i;
}

void dataset::change(std::size_t i, std::int64_t now_ms) {
    unlink(i);
    record& r = records_[i];
    r.last_seen_ms = quantize(now_ms, style_for(options_.seed, i, ts_field::last_seen));
    ++r.version;
    incident_writer writer;
    render(i, writer, text_);  // the old text stays in the arena: live mode changes few incidents
    link(i);
}

bool dataset::serves_before(std::uint32_t a, std::uint32_t b) const {
    const record& ra = records_[a];
    const record& rb = records_[b];
    if (ra.last_seen_ms != rb.last_seen_ms) return ra.last_seen_ms > rb.last_seen_ms;
    // Then by id ascending; fixed-width lowercase hex sorts like the numbers it encodes.
    const auto pa = id_prefix(ra.first_seen_ms), pb = id_prefix(rb.first_seen_ms);
    if (pa != pb) return pa < pb;
    const id_permutation perm(options_.seed);
    return perm.forward(a) < perm.forward(b);
}

void dataset::unlink(std::size_t i) {
    auto& v = order_[records_[i].pair];
    const auto key = static_cast<std::uint32_t>(i);
    const auto it = std::lower_bound(v.begin(), v.end(), key,
                                     [this](std::uint32_t a, std::uint32_t b) { return serves_before(a, b); });
    if (it == v.end() || *it != key) throw std::logic_error("dataset: serve order lost an incident");
    v.erase(it);
}

void dataset::link(std::size_t i) {
    auto& v = order_[records_[i].pair];
    const auto key = static_cast<std::uint32_t>(i);
    v.insert(std::upper_bound(v.begin(), v.end(), key,
                              [this](std::uint32_t a, std::uint32_t b) { return serves_before(a, b); }),
             key);
}

}  // namespace fake_api
