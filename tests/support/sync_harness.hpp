#pragma once
// An in-process sync against the fake API over real TLS on 127.0.0.1 into a
// real SQLite file: the engine runs on the test's thread, the server on its own.

#include "fake_api/server.hpp"
#include "store/incident_store.hpp"
#include "support/test_support.hpp"
#include "sync/engine.hpp"

#include <SQLiteCpp/Database.h>
#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <optional>

namespace test_support {

struct harness_options {
    fake_api::server_options server;
    std::size_t pairs = 2;  // sim pairs PXsim000/site000.example ...
    int page_size = 50;
    int max_attempts = 6;
    std::chrono::milliseconds busy_timeout{5000};
};

class sync_harness {
public:
    explicit sync_harness(harness_options options = {});

    // One engine pass over every pair at the fixed clock `now_ms()`.
    // Returns run_once()'s verdict; stats() holds the engine's counters.
    bool run_once();

    fake_api::server& server() { return *server_; }
    SQLite::Database& db() { return *db_; }
    isync::store::incident_store& store() { return *store_; }
    isync::sync::engine_settings& settings() { return settings_; }
    const isync::sync::sync_stats& stats() const { return stats_; }
    const isync::sync::source_stats& source_stats() const { return source_stats_; }
    std::string& token() { return token_; }
    std::int64_t& now_ms() { return now_ms_; }
    const std::string& db_path() const { return db_path_; }
    const isync::test::temp_dir& dir() const { return dir_; }
    const std::map<isync::config::pair, isync::sync::pair_status>& last_status() const { return last_status_; }

    // Every incident the server holds whose pair is configured must be in the
    // database, equal to expected_incident(); reports the first few differences.
    ::testing::AssertionResult database_matches_dataset();

private:
    isync::test::temp_dir dir_;
    std::unique_ptr<fake_api::server> server_;
    std::shared_ptr<boost::asio::ssl::context> tls_;
    std::string db_path_;
    std::unique_ptr<SQLite::Database> db_;
    std::unique_ptr<isync::store::incident_store> store_;
    isync::sync::engine_settings settings_;
    std::string token_;
    std::int64_t now_ms_;
    isync::sync::sync_stats stats_;
    isync::sync::source_stats source_stats_;
    std::map<isync::config::pair, isync::sync::pair_status> last_status_;
};

}  // namespace test_support
