#pragma once
// The daemon binary as a real process against the in-process fake API, with
// a generated config, token file and CA, in a fresh temp directory.

#include "fake_api/server.hpp"
#include "support/subprocess.hpp"
#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace test_support {

struct daemon_options {
    std::size_t incidents = 2'000;
    std::size_t pairs = 2;
    std::uint64_t seed = 11;
    fake_api::faults faults{};
    std::string extra_sync_yaml;      // more `sync:` keys, indented by 2
    std::string extra_api_yaml;       // more `api:` keys, indented by 2
    std::string busy_timeout = "5s";  // database.busy_timeout
    std::string extra_database_yaml;  // more `database:` keys, indented by 2 (url: for PostgreSQL)
    std::string log_level = "info";
    std::string log_format = "text";
    std::string interval = "1s";
    int concurrency = 2;                      // sync.concurrency
    std::string token = "test-token";         // the token the fake API accepts
    std::vector<std::string> other_tokens{};  // accepted too (replicas, each with its own, via HUMAN_API_TOKEN)
    std::vector<std::string> unauthorized_app_ids{};
    std::map<std::string, fake_api::app_refusal> refused_app_ids{};  // 401, 403 or 422 by appId
};

class daemon_fixture {
public:
    explicit daemon_fixture(daemon_options options = {});

    // Rewrites the config file (e.g. after changing pairs()).
    void write_config();

    std::vector<std::string> command(const std::string& verb) const;
    int run(const std::string& verb, const std::string& name, std::vector<std::string> extra_args = {});
    std::unique_ptr<subprocess> start(const std::string& verb, const std::string& name,
                                      std::vector<std::string> env = {});

    fake_api::server& server() { return *server_; }
    std::vector<isync::config::pair>& pairs() { return pairs_; }
    const isync::test::temp_dir& dir() const { return dir_; }
    std::string config_path() const { return dir_.file("incident-sync.yaml"); }
    std::string db_path() const { return dir_.file("incidents.db"); }
    std::string token_path() const { return dir_.file("token"); }
    void write_token(const std::string& token);
    std::string output(const std::string& name) const;
    std::int64_t data_end_ms() const {
        return data_end_ms_;
    }  // newest possible last_seen  // stdout + stderr of a finished run

    // A read-only connection for checks (WAL: the daemon may be running).
    std::unique_ptr<SQLite::Database> open_db() const;

    // Incidents of configured pairs that the database lacks or holds differently.
    ::testing::AssertionResult database_matches_dataset();

private:
    daemon_options options_;
    isync::test::temp_dir dir_;
    std::unique_ptr<fake_api::server> server_;
    std::vector<isync::config::pair> pairs_;
    std::int64_t data_end_ms_ = 0;
};

}  // namespace test_support
