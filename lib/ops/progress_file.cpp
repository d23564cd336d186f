#include "ops/progress_file.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace isync::ops {

std::string progress_path(const std::string& database_path) { return database_path + ".progress"; }

namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

// `"app_id":...,"tld":...` inside an open object.
void write_pair_keys(json_writer& w, const config::pair& pair) {
    w.Key("app_id");
    w.String(pair.app_id);
    w.Key("tld");
    w.String(pair.tld);
}

// The pair an object names, or nullopt when it names none.
std::optional<config::pair> read_pair_keys(const rapidjson::Value& e) {
    if (!e.IsObject() || !e.HasMember("app_id") || !e["app_id"].IsString() || !e.HasMember("tld") ||
        !e["tld"].IsString())
        return std::nullopt;
    return config::pair{e["app_id"].GetString(), e["tld"].GetString()};
}

}  // namespace

std::string render_progress(const daemon_progress& p) {
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    w.StartObject();
    w.Key("pid");
    w.Int64(p.pid);
    w.Key("updated_ms");
    w.Int64(p.updated_ms);
    w.Key("pairs");
    w.StartArray();
    for (const auto& [pair, pp] : p.pairs) {
        w.StartObject();
        write_pair_keys(w, pair);
        w.Key("poll_started_ms");
        w.Int64(pp.poll_started_ms);
        w.Key("slice");
        w.Int(pp.slice);
        w.Key("slices");
        w.Int(pp.slices);
        w.Key("read");
        w.Int64(pp.read);
        w.Key("window_count");
        w.Int64(pp.window_count);
        w.EndObject();
    }
    w.EndArray();
    if (p.polled) {
        w.Key("polled");
        w.StartArray();
        for (const auto& pair : *p.polled) {
            w.StartObject();
            write_pair_keys(w, pair);
            w.EndObject();
        }
        w.EndArray();
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

result<daemon_progress> parse_progress(std::string_view json) {
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    auto bad = [] { return make_error(errc::parse, "not a progress file of this incident-syncd"); };
    if (doc.HasParseError() || !doc.IsObject()) return bad();
    auto int_of = [](const rapidjson::Value& o, const char* key) -> std::optional<std::int64_t> {
        const auto it = o.FindMember(key);
        if (it == o.MemberEnd() || !it->value.IsInt64()) return std::nullopt;
        return it->value.GetInt64();
    };
    daemon_progress p;
    const auto pid = int_of(doc, "pid");
    const auto updated = int_of(doc, "updated_ms");
    const auto pairs = doc.FindMember("pairs");
    if (!pid || !updated || pairs == doc.MemberEnd() || !pairs->value.IsArray()) return bad();
    p.pid = static_cast<long>(*pid);
    p.updated_ms = *updated;
    for (const auto& e : pairs->value.GetArray()) {
        const auto pair = read_pair_keys(e);
        if (!pair) return bad();
        sync::pair_progress pp;
        pp.poll_started_ms = int_of(e, "poll_started_ms").value_or(0);
        pp.slice = static_cast<int>(int_of(e, "slice").value_or(0));
        pp.slices = static_cast<int>(int_of(e, "slices").value_or(0));
        pp.read = int_of(e, "read").value_or(0);
        pp.window_count = int_of(e, "window_count").value_or(0);
        p.pairs[*pair] = pp;
    }
    if (const auto polled = doc.FindMember("polled"); polled != doc.MemberEnd()) {
        if (!polled->value.IsArray()) return bad();
        p.polled.emplace();
        for (const auto& e : polled->value.GetArray()) {
            const auto pair = read_pair_keys(e);
            if (!pair) return bad();
            p.polled->push_back(*pair);
        }
    }
    return p;
}

result<void> write_progress_file(const std::string& database_path, const daemon_progress& p) {
    const std::string path = progress_path(database_path);
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << render_progress(p);
        out.close();
        if (!out) return make_error(errc::database, fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        return make_error(errc::database, fmt::format("cannot rename {} to {}: {}", tmp, path, std::strerror(errno)));
    return {};
}

void remove_progress_file(const std::string& database_path) noexcept {
    std::remove(progress_path(database_path).c_str());
}

namespace {

std::optional<std::string> read_small_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Alive, even when it belongs to another user (EPERM).
bool pid_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

}  // namespace

std::optional<daemon_progress> read_live_progress(const std::string& database_path) {
    const auto text = read_small_file(progress_path(database_path));
    if (!text) return std::nullopt;
    auto p = parse_progress(*text);
    if (!p || !pid_alive(p->pid)) return std::nullopt;
    // The lock file names the daemon that holds the database; a progress file
    // of another pid was left by a daemon that died.
    const auto lock = read_small_file(database_path + ".lock");
    if (!lock || std::strtol(lock->c_str(), nullptr, 10) != p->pid) return std::nullopt;
    return std::move(*p);
}

progress_rate rate_of(const sync::pair_progress& p, std::int64_t now_ms) {
    progress_rate r;
    const double seconds = static_cast<double>(now_ms - p.poll_started_ms) / 1000.0;
    if (seconds > 0) r.per_second = static_cast<double>(p.read) / seconds;
    // The count is known for the slices begun; the rest are assumed as dense.
    if (p.slice > 0 && p.slices > 0 && r.per_second > 0) {
        const double expected = static_cast<double>(p.window_count) * p.slices / p.slice;
        const double left = std::max(0.0, expected - static_cast<double>(p.read));
        r.eta_seconds = static_cast<std::int64_t>(left / r.per_second + 0.5);
    }
    return r;
}

}  // namespace isync::ops
