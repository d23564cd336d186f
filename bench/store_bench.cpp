// incident-bench: the in-process half of the benchmark (issue 6). It times the
// page parser and the store on the fake API's dataset, without sockets, so
// scripts/bench.sh can tell where an end-to-end second goes.
//
//   incident-bench parse --incidents N [--pairs P] [--repeat R]
//   incident-bench store --incidents N --mode fresh|unchanged|changed10|all [--dir D] ...
//
// Results go to stdout as `metric<TAB>value` lines (medians over --repeat
// runs); each run's numbers go to stderr.

#include "api/page_parser.hpp"
#include "fake_api/dataset.hpp"
#include "fake_api/endpoint.hpp"
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "sync/store_writer.hpp"

#include <SQLiteCpp/Database.h>
#include <rapidjson/document.h>
#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <time.h>

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

constexpr std::int64_t day_ms = 86'400'000;
constexpr std::string_view bench_token = "bench-token";

struct options {
    std::string command;
    std::size_t incidents = 100'000;
    std::size_t pairs = 10;
    std::size_t page_size = 100;
    std::size_t repeat = 3;
    std::string mode = "all";
    fs::path dir = fs::temp_directory_path();
    std::uint64_t seed = 1;
    std::vector<std::string> sql;  // store: run after each open, e.g. "PRAGMA cache_size=-65536"
    std::int64_t batch = 0;        // store: incidents per transaction; 0: as the daemon's writer
};

std::string usage() {
    return "usage: incident-bench parse [--incidents N] [--pairs P] [--page-size S] [--repeat R] [--seed X]\n"
           "       incident-bench store [--incidents N] [--pairs P] [--page-size S] [--repeat R] [--seed X]\n"
           "                            [--mode fresh|unchanged|changed10|all] [--dir DIR] [--sql STATEMENT]...\n"
           "                            [--batch INCIDENTS]\n"
           "--sql runs a statement after each open of the database (a pragma, DROP INDEX, ...) to try a lever.\n"
           "--batch sets the incidents written per transaction (default: the daemon writer's).\n"
           "Prints `metric<TAB>value` lines (medians over R runs) on stdout, each run on stderr.\n";
}

std::size_t parse_count(std::string_view flag, std::string_view text) {
    std::size_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end)
        throw std::invalid_argument(std::string(flag) + ": expected a non-negative integer, got \"" +
                                    std::string(text) + "\"");
    return value;
}

options parse_args(int argc, char** argv) {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h") throw std::invalid_argument(usage());
    options o;
    o.command = args[0];
    if (o.command != "parse" && o.command != "store")
        throw std::invalid_argument("unknown command \"" + o.command + "\"\n" + usage());
    for (std::size_t k = 1; k < args.size(); ++k) {
        const auto flag = args[k];
        if (k + 1 >= args.size()) throw std::invalid_argument(std::string(flag) + ": unknown flag or missing value");
        const auto value = args[++k];
        if (flag == "--incidents")
            o.incidents = parse_count(flag, value);
        else if (flag == "--pairs")
            o.pairs = std::max<std::size_t>(1, parse_count(flag, value));
        else if (flag == "--page-size")
            o.page_size = std::max<std::size_t>(1, parse_count(flag, value));
        else if (flag == "--repeat")
            o.repeat = std::max<std::size_t>(1, parse_count(flag, value));
        else if (flag == "--seed")
            o.seed = parse_count(flag, value);
        else if (flag == "--dir")
            o.dir = value;
        else if (flag == "--sql")
            o.sql.emplace_back(value);
        else if (flag == "--batch")
            o.batch = static_cast<std::int64_t>(parse_count(flag, value));
        else if (flag == "--mode") {
            o.mode = value;
            if (o.mode != "fresh" && o.mode != "unchanged" && o.mode != "changed10" && o.mode != "all")
                throw std::invalid_argument("--mode: expected fresh, unchanged, changed10 or all");
        } else {
            throw std::invalid_argument(std::string(flag) + ": unknown flag\n" + usage());
        }
    }
    return o;
}

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// CPU seconds this process has used (user + system), to tell computing from
// waiting on the disk.
double process_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Bytes this process has passed to write(2) and friends so far (/proc/self/io
// `wchar`): the WAL, checkpoints into the database file, and anything else.
std::int64_t bytes_written_so_far() {
    std::ifstream in("/proc/self/io");
    std::string key;
    std::int64_t value = 0;
    while (in >> key >> value)
        if (key == "wchar:") return value;
    return 0;
}

// The workload: every pair's window as the server would page it, rendered by
// the fake API's own endpoint so the bytes are exactly what the daemon reads.
struct workload {
    std::vector<std::string> pages;
    std::size_t incidents = 0;
    std::size_t bytes = 0;
};

workload make_workload(const options& o) {
    const auto started = clock_type::now();
    const std::int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    fake_api::dataset data({.seed = o.seed,
                            .incidents = o.incidents,
                            .pairs = fake_api::sim_pairs(o.pairs),
                            .start_ms = now_ms - 7 * day_ms,
                            .end_ms = now_ms});
    fake_api::endpoint_config config;
    config.token = std::string(bench_token);
    const std::string authorization = "Bearer " + config.token;
    const std::int64_t from_ms = now_ms - 8 * day_ms;
    const std::int64_t to_ms = now_ms + 1;

    workload w;
    for (std::size_t p = 0; p < data.pairs().size(); ++p) {
        const auto& pair = data.pairs()[p];
        const std::size_t count = data.window(p, from_ms, to_ms).size();
        for (std::size_t skip = 0; skip < count; skip += o.page_size) {
            const std::string target = "/v1/incidents?appId=" + pair.app_id + "&tld=" + pair.tld +
                                       "&from=" + std::to_string(from_ms) + "&to=" + std::to_string(to_ms) +
                                       "&skip=" + std::to_string(skip) + "&take=" + std::to_string(o.page_size);
            auto reply = fake_api::handle_request("GET", target, authorization, data, config, now_ms);
            if (reply.status != 200) throw std::runtime_error("fake API answered " + std::to_string(reply.status));
            w.incidents += reply.incidents;
            w.bytes += reply.body.size();
            w.pages.push_back(std::move(reply.body));
        }
    }
    std::fprintf(stderr, "workload: %zu incidents, %zu pages, %.1f MiB of JSON, made in %.1f s\n", w.incidents,
                 w.pages.size(), static_cast<double>(w.bytes) / (1 << 20), seconds_since(started));
    return w;
}

isync::model::page parse_or_throw(std::string_view body) {
    auto page = isync::api::parse_page(body);
    if (!page) throw std::runtime_error("parse_page failed: " + page.error().message);
    return std::move(*page);
}

// --- parse -----------------------------------------------------------------

// The floor under parse_page: RapidJSON building its DOM of the same bytes
// (iterative, as parse_page does), without the typed model or the raw spans.
double dom_rate(const workload& w) {
    const auto started = clock_type::now();
    std::size_t parsed = 0;
    for (const auto& body : w.pages) {
        rapidjson::Document doc;
        doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
        if (doc.HasParseError() || !doc.IsObject()) throw std::runtime_error("RapidJSON could not parse a page");
        parsed += doc["data"].Size();
    }
    return static_cast<double>(parsed) / seconds_since(started);
}

int run_parse(const options& o) {
    const workload w = make_workload(o);
    std::vector<double> rates;
    std::vector<double> dom_rates;
    std::vector<double> untyped_rates;
    for (std::size_t r = 0; r < o.repeat; ++r) {
        // What a re-read does: cut out and hash each incident, type nothing.
        std::size_t cut = 0;
        const auto cut_started = clock_type::now();
        for (const auto& body : w.pages) {
            auto page = isync::api::parse_page(body, isync::api::parse_mode::untyped);
            if (!page) throw std::runtime_error(page.error().message);
            cut += page->untyped.size();
        }
        if (cut != w.incidents) throw std::runtime_error("cut out a different number of incidents than served");
        untyped_rates.push_back(static_cast<double>(cut) / seconds_since(cut_started));
        std::fprintf(stderr, "parse run %zu: untyped (a re-read's parse): %.0f incidents/s\n", r + 1,
                     untyped_rates.back());
        dom_rates.push_back(dom_rate(w));
        std::fprintf(stderr, "parse run %zu: RapidJSON DOM alone: %.0f incidents/s\n", r + 1, dom_rates.back());
        std::size_t parsed = 0;
        const auto started = clock_type::now();
        for (const auto& body : w.pages) parsed += parse_or_throw(body).incidents.size();
        const double seconds = seconds_since(started);
        if (parsed != w.incidents) throw std::runtime_error("parsed a different number of incidents than served");
        rates.push_back(static_cast<double>(parsed) / seconds);
        std::fprintf(stderr, "parse run %zu: %zu incidents in %.3f s: %.0f incidents/s, %.1f MiB/s\n", r + 1, parsed,
                     seconds, rates.back(), static_cast<double>(w.bytes) / (1 << 20) / seconds);
    }
    const double rate = median(rates);
    std::printf("parse.incidents\t%zu\n", w.incidents);
    std::printf("parse.incidents_per_s\t%.0f\n", rate);
    std::printf("parse.mib_per_s\t%.1f\n", static_cast<double>(w.bytes) / (1 << 20) * rate / w.incidents);
    std::printf("parse.dom_incidents_per_s\t%.0f\n", median(dom_rates));
    std::printf("parse.untyped_incidents_per_s\t%.0f\n", median(untyped_rates));
    return 0;
}

// --- store -----------------------------------------------------------------

// Times SQLite's automatic checkpoints. Installing a WAL hook replaces
// SQLite's default one, which is what runs automatic checkpoints, so this hook
// does that job too, as sqlite3WalDefaultHook does: PASSIVE once the log holds
// `PRAGMA wal_autocheckpoint` frames (read when the hook is installed, so a
// policy set by open_database is kept). A hook of the store's own would be
// replaced by this one: chain it here if the store ever installs one.
struct checkpoint_meter {
    int threshold = 0;   // frames; 0: automatic checkpoints are off
    double seconds = 0;  // fsyncs included

    static int hook(void* self_ptr, sqlite3* db, const char* schema, int frames) {
        auto& self = *static_cast<checkpoint_meter*>(self_ptr);
        if (self.threshold > 0 && frames >= self.threshold) {
            const auto started = clock_type::now();
            sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
            self.seconds += seconds_since(started);
        }
        return SQLITE_OK;
    }
};

// Pages this connection has written since the last call. In WAL mode every
// page a commit writes is one WAL frame (SQLITE_DBSTATUS_CACHE_WRITE counts
// them); checkpoints copy frames outside the pager and are not counted.
std::int64_t pages_written_since_last_call(sqlite3* db) {
    int current = 0;
    int highwater = 0;
    sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_WRITE, &current, &highwater, 1);
    return current;
}

struct pass_result {
    std::size_t incidents = 0;
    double seconds = 0;              // inside the store's calls only
    double checkpoint_seconds = 0;   // of which automatic checkpoints
    double cpu_seconds = 0;          // CPU used inside the store's calls
    std::int64_t rows_written = 0;   // sqlite3_total_changes delta
    std::int64_t wal_bytes = 0;      // frames appended to the WAL, headers included
    std::int64_t bytes_written = 0;  // write(2) bytes of the whole process: the WAL plus checkpoints
    isync::store::upsert_counts counts;
};

void remove_database(const fs::path& path) {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
}

// Gives every tenth incident a new risk level, in its typed field and its raw
// JSON, so its content hash changes and the store must rewrite it.
void change_every_tenth(isync::model::page& page, std::size_t& ordinal) {
    static const std::vector<std::string> levels{"low", "medium", "high", "critical"};
    for (auto& inc : page.incidents) {
        if (ordinal++ % 10 != 0) continue;
        const std::string old_level = inc.risk_level.value_or("");
        auto it = std::find(levels.begin(), levels.end(), old_level);
        const std::string new_level = it == levels.end() || it + 1 == levels.end() ? levels.front() : *(it + 1);
        inc.risk_level = new_level;
        const std::string needle = "\"risk_level\":\"";
        const auto at = inc.raw_json.find(needle);
        const auto value_begin = at == std::string::npos ? at : at + needle.size();
        const auto value_end = at == std::string::npos ? at : inc.raw_json.find('"', value_begin);
        if (value_end != std::string::npos)
            inc.raw_json.replace(value_begin, value_end - value_begin, new_level);
        else
            inc.raw_json.insert(1, " ");  // still valid JSON, still a different hash
    }
}

// One pass over every page into the database at `path`, reopened for the pass
// as each `incident-syncd once` opens it; `extra_sql` runs right after opening
// (to try a pragma or an index change without rebuilding the store).
pass_result store_pass(const fs::path& path, const workload& w, bool change_tenth, std::int64_t now_ms,
                       const std::vector<std::string>& extra_sql, std::int64_t batch) {
    auto db = isync::store::open_database({.path = path.string()});
    if (!db) throw std::runtime_error(db.error().message);
    SQLite::Database& database = **db;
    for (const auto& sql : extra_sql) database.exec(sql);
    checkpoint_meter meter;
    meter.threshold = database.execAndGet("PRAGMA wal_autocheckpoint").getInt();
    sqlite3_wal_hook(database.getHandle(), &checkpoint_meter::hook, &meter);
    const int page_bytes = database.execAndGet("PRAGMA page_size").getInt();
    pages_written_since_last_call(database.getHandle());
    isync::store::incident_store store(database, path.string());
    store.defer_indexes_while_empty();  // as the daemon does at start

    pass_result r;
    const int changes_before = database.getTotalChanges();
    const std::int64_t written_before = bytes_written_so_far();
    std::size_t ordinal = 0;
    // Pages are grouped into transactions as the daemon's writer thread groups
    // them while it is the bottleneck: commit once a transaction holds
    // writer_limits' incidents written, and at the end.
    const std::int64_t batch_limit = batch > 0 ? batch : isync::sync::writer_limits{}.max_batch_incidents;
    std::int64_t in_batch = 0;
    for (std::size_t i = 0; i < w.pages.size(); ++i) {
        auto page = parse_or_throw(w.pages[i]);
        if (change_tenth) change_every_tenth(page, ordinal);
        const auto started = clock_type::now();
        const double cpu_started = process_cpu_seconds();
        if (!store.in_transaction())
            if (auto begun = store.begin(); !begun) throw std::runtime_error(begun.error().message);
        auto counts = store.write_page(page.incidents, now_ms);
        if (!counts) throw std::runtime_error(counts.error().message);
        in_batch += counts->inserted + counts->changed;
        if (in_batch >= batch_limit || i + 1 == w.pages.size()) {
            if (auto committed = store.commit(); !committed) throw std::runtime_error(committed.error().message);
            in_batch = 0;
        }
        r.cpu_seconds += process_cpu_seconds() - cpu_started;
        r.seconds += seconds_since(started);
        r.counts += *counts;
        r.incidents += page.incidents.size();
    }
    // As the daemon does once the pass is over (a no-op unless the database was empty).
    const auto started = clock_type::now();
    const double cpu_started = process_cpu_seconds();
    store.build_deferred_indexes();
    r.cpu_seconds += process_cpu_seconds() - cpu_started;
    r.seconds += seconds_since(started);
    r.bytes_written = bytes_written_so_far() - written_before;
    r.rows_written = database.getTotalChanges() - changes_before;
    r.wal_bytes = pages_written_since_last_call(database.getHandle()) * (page_bytes + 24);
    r.checkpoint_seconds = meter.seconds;
    sqlite3_wal_hook(database.getHandle(), nullptr, nullptr);
    return r;
}

int run_store(const options& o) {
    const workload w = make_workload(o);
    fs::create_directories(o.dir);
    const fs::path path = o.dir / "incident-bench.db";
    const bool all = o.mode == "all";
    std::map<std::string, std::vector<pass_result>> results;  // by mode

    for (std::size_t r = 0; r < o.repeat; ++r) {
        remove_database(path);
        std::int64_t now_ms = 1'700'000'000'000;  // each pass a minute later: last_synced_at moves
        auto pass = [&](const std::string& mode, bool change_tenth, bool timed) {
            const auto result = store_pass(path, w, change_tenth, now_ms += 60'000, o.sql, o.batch);
            if (!timed) return;
            std::fprintf(stderr,
                         "store %s run %zu: %zu incidents in %.3f s (%.3f s CPU, %.3f s checkpointing): "
                         "%.0f incidents/s, %lld rows, %.1f MiB WAL, %.1f MiB written "
                         "(new %lld, changed %lld, unchanged %lld)\n",
                         mode.c_str(), r + 1, result.incidents, result.seconds, result.cpu_seconds,
                         result.checkpoint_seconds, result.incidents / result.seconds,
                         static_cast<long long>(result.rows_written), result.wal_bytes / 1048576.0,
                         result.bytes_written / 1048576.0, static_cast<long long>(result.counts.inserted),
                         static_cast<long long>(result.counts.changed),
                         static_cast<long long>(result.counts.unchanged));
            results[mode].push_back(result);
        };
        pass("fresh", false, all || o.mode == "fresh");
        if (all || o.mode == "unchanged") pass("unchanged", false, true);
        if (all || o.mode == "changed10") pass("changed10", true, true);
        if (r + 1 == o.repeat) {
            std::printf("store.database_bytes\t%lld\n", static_cast<long long>(fs::file_size(path)));
        }
        remove_database(path);
    }

    std::printf("store.incidents\t%zu\n", w.incidents);
    for (const auto& [mode, runs] : results) {
        auto med = [&](auto field) {
            std::vector<double> v;
            for (const auto& run : runs) v.push_back(field(run));
            return median(v);
        };
        std::printf("store.%s.incidents_per_s\t%.0f\n", mode.c_str(),
                    med([](const pass_result& p) { return p.incidents / p.seconds; }));
        std::printf("store.%s.seconds\t%.3f\n", mode.c_str(), med([](const pass_result& p) { return p.seconds; }));
        std::printf("store.%s.cpu_seconds\t%.3f\n", mode.c_str(),
                    med([](const pass_result& p) { return p.cpu_seconds; }));
        std::printf("store.%s.checkpoint_seconds\t%.3f\n", mode.c_str(),
                    med([](const pass_result& p) { return p.checkpoint_seconds; }));
        std::printf("store.%s.rows_written\t%.0f\n", mode.c_str(),
                    med([](const pass_result& p) { return static_cast<double>(p.rows_written); }));
        std::printf("store.%s.wal_bytes\t%.0f\n", mode.c_str(),
                    med([](const pass_result& p) { return static_cast<double>(p.wal_bytes); }));
        std::printf("store.%s.bytes_written\t%.0f\n", mode.c_str(),
                    med([](const pass_result& p) { return static_cast<double>(p.bytes_written); }));
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const options o = parse_args(argc, argv);
        return o.command == "parse" ? run_parse(o) : run_store(o);
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "incident-bench: %s\n", e.what());
        return 64;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "incident-bench: %s\n", e.what());
        return 1;
    }
}
