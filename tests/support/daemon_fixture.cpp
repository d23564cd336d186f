#include "support/daemon_fixture.hpp"

#include "support/db_reader.hpp"

#include <fmt/format.h>

#include <sys/stat.h>
#include <chrono>
#include <fstream>

namespace test_support {
namespace {

std::int64_t wall_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

daemon_fixture::daemon_fixture(daemon_options options) : options_(std::move(options)) {
    fake_api::server_options so;
    so.data.seed = options_.seed;
    so.data.incidents = options_.incidents;
    so.data.pairs = fake_api::sim_pairs(options_.pairs);
    // The daemon runs on the real clock: the data ends two minutes ago.
    so.data.end_ms = wall_now_ms() - 120'000;
    so.data.start_ms = so.data.end_ms - 2 * 86'400'000LL;
    data_end_ms_ = so.data.end_ms;
    so.faults = options_.faults;
    so.token = options_.token;
    so.other_tokens = options_.other_tokens;
    so.unauthorized_app_ids = options_.unauthorized_app_ids;
    so.refused_app_ids = options_.refused_app_ids;
    server_ = std::make_unique<fake_api::server>(so);
    server_->write_ca_file(dir_.file("ca.pem"));
    pairs_ = so.data.pairs;
    write_token(server_->token());
    write_config();
}

void daemon_fixture::write_token(const std::string& token) {
    {
        std::ofstream out(token_path(), std::ios::trunc);
        out << token << "\n";
    }
    ::chmod(token_path().c_str(), 0600);
}

void daemon_fixture::write_config() {
    std::string pairs;
    for (const auto& p : pairs_) pairs += fmt::format("    - {{ app_id: {}, tld: {} }}\n", p.app_id, p.tld);
    const std::string yaml = fmt::format(
        "api:\n"
        "  base_url: {}\n"
        "  token_file: {}\n"
        "  ca_file: {}\n"
        "  timeout: 10s\n"
        "  page_size: 50\n"
        "{}"
        "retry:\n"
        "  max_attempts: 8\n"
        "  base_delay: 10ms\n"
        "  max_delay: 200ms\n"
        "sync:\n"
        "  interval: {}\n"
        "  initial_lookback: 3d\n"
        "  settle: 0s\n"
        "  concurrency: {}\n"
        "{}"
        "  pairs:\n{}"
        "database:\n"
        "  path: {}\n"
        "  busy_timeout: {}\n"
        "{}"
        "log:\n"
        "  level: {}\n"
        "  format: {}\n"
        "metrics:\n"
        "  listen: 127.0.0.1:0\n",
        server_->base_url(), token_path(), dir_.file("ca.pem"), options_.extra_api_yaml, options_.interval,
        options_.concurrency, options_.extra_sync_yaml, pairs, db_path(), options_.busy_timeout,
        options_.extra_database_yaml, options_.log_level, options_.log_format);
    std::ofstream out(config_path(), std::ios::trunc);
    out << yaml;
}

std::vector<std::string> daemon_fixture::command(const std::string& verb) const {
    return {INCIDENT_SYNCD_PATH, verb, "--config", config_path()};
}

int daemon_fixture::run(const std::string& verb, const std::string& name, std::vector<std::string> extra_args) {
    auto argv = command(verb);
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    return run_process(argv, dir_.path(), name);
}

std::unique_ptr<subprocess> daemon_fixture::start(const std::string& verb, const std::string& name,
                                                  std::vector<std::string> env) {
    return std::make_unique<subprocess>(command(verb), dir_.path(), name, std::move(env));
}

std::string daemon_fixture::output(const std::string& name) const {
    return read_file(dir_.path() / (name + ".stdout")) + read_file(dir_.path() / (name + ".stderr"));
}

std::unique_ptr<SQLite::Database> daemon_fixture::open_db() const {
    auto db = std::make_unique<SQLite::Database>(db_path(), SQLite::OPEN_READONLY);
    db->setBusyTimeout(5000);
    return db;
}

::testing::AssertionResult daemon_fixture::database_matches_dataset() {
    auto db = open_db();
    std::size_t expected = 0, missing = 0, different = 0;
    std::string report;
    server_->with_dataset([&](const fake_api::dataset& data) {
        for (std::size_t i = 0; i < data.size(); ++i) {
            const auto& pair = data.pairs()[data.pair_of(i)];
            if (std::find(pairs_.begin(), pairs_.end(), pair) == pairs_.end()) continue;
            ++expected;
            const auto want = in_database_order(data.expected_incident(i));
            const auto got = read_incident(*db, want.id);
            if (!got) {
                if (++missing <= 3) report += "missing " + want.id + "\n";
            } else if (*got != want) {
                if (++different <= 3) report += "different " + want.id + "\n";
            }
        }
    });
    const auto in_db = incident_ids(*db).size();
    if (missing || different || in_db != expected)
        return ::testing::AssertionFailure() << missing << " missing, " << different << " different, " << in_db
                                             << " in the database, " << expected << " expected\n"
                                             << report;
    return ::testing::AssertionSuccess();
}

}  // namespace test_support
