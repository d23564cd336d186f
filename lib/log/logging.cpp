#include "log/logging.hpp"

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <chrono>

namespace isync::log {
namespace {

void append_json_string(spdlog::memory_buf_t& out, std::string_view s) {
    out.push_back('"');
    for (char c : s) {
        switch (c) {
            case '"':
                out.append(std::string_view("\\\""));
                break;
            case '\\':
                out.append(std::string_view("\\\\"));
                break;
            case '\n':
                out.append(std::string_view("\\n"));
                break;
            case '\r':
                out.append(std::string_view("\\r"));
                break;
            case '\t':
                out.append(std::string_view("\\t"));
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20)
                    fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<int>(c));
                else
                    out.push_back(c);
        }
    }
    out.push_back('"');
}

thread_local std::vector<scoped_fields::field> current_fields;

// One JSON object per line: {"ts":"...","level":"info","msg":"...", fields...}.
class json_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
        const std::time_t secs = static_cast<std::time_t>(ms / 1000);
        std::tm tm{};
        gmtime_r(&secs, &tm);
        fmt::format_to(std::back_inserter(dest),
                       "{{\"ts\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"level\":\"{}\",\"msg\":",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000,
                       std::string_view(spdlog::level::to_string_view(msg.level).data(),
                                        spdlog::level::to_string_view(msg.level).size()));
        append_json_string(dest, std::string_view(msg.payload.data(), msg.payload.size()));
        for (const auto& f : current_fields) {
            dest.push_back(',');
            append_json_string(dest, f.key);
            dest.push_back(':');
            if (f.number)
                dest.append(std::string_view(f.value));
            else
                append_json_string(dest, f.value);
        }
        dest.append(std::string_view("}\n"));
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }
};

}  // namespace

scoped_fields::scoped_fields(std::vector<field> fields) : previous_size_(current_fields.size()) {
    for (auto& f : fields) current_fields.push_back(std::move(f));
}

scoped_fields::~scoped_fields() { current_fields.resize(previous_size_); }

result<spdlog::level::level_enum> parse_level(std::string_view text) {
    using spdlog::level::level_enum;
    if (text == "trace") return level_enum::trace;
    if (text == "debug") return level_enum::debug;
    if (text == "info") return level_enum::info;
    if (text == "warn") return level_enum::warn;
    if (text == "error") return level_enum::err;
    return make_error(errc::config,
                      fmt::format("log level \"{}\" is not one of trace, debug, info, warn, error", text));
}

void init(spdlog::level::level_enum level, std::string_view format) {
    auto logger = std::make_shared<spdlog::logger>("incident-syncd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    if (format == "json")
        logger->set_formatter(std::make_unique<json_formatter>());
    else
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
    logger->set_level(level);
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
}

}  // namespace isync::log
