#include "support/sync_harness.hpp"

#include "http/tls_context.hpp"
#include "store/database.hpp"
#include "support/db_reader.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

namespace test_support {

sync_harness::sync_harness(harness_options options) {
    if (options.server.data.pairs.empty()) options.server.data.pairs = fake_api::sim_pairs(options.pairs);
    // The clock stands one minute after the newest incident, fixed for the test.
    now_ms_ = options.server.data.end_ms + 60'000;
    if (!options.server.now_ms) options.server.now_ms = now_ms_;
    server_ = std::make_unique<fake_api::server>(options.server);
    server_->write_ca_file(dir_.file("ca.pem"));
    tls_ = isync::http::make_tls_context({dir_.file("ca.pem"), false}).value();

    db_path_ = dir_.file("incidents.db");
    db_ = isync::store::open_database({db_path_, options.busy_timeout, false}).value();
    store_ = std::make_unique<isync::store::incident_store>(*db_, db_path_);

    settings_.sync.pairs = options.server.data.pairs;
    settings_.sync.initial_lookback = std::chrono::milliseconds(now_ms_ - options.server.data.start_ms + 3'600'000);
    settings_.sync.settle = std::chrono::milliseconds(0);
    settings_.sync.overlap = std::chrono::minutes(15);
    settings_.sync.max_window = std::chrono::hours(6);
    settings_.sync.concurrency = 4;
    settings_.retry.max_attempts = options.max_attempts;
    settings_.retry.base_delay = std::chrono::milliseconds(1);
    settings_.retry.max_delay = std::chrono::milliseconds(20);
    settings_.page_size = options.page_size;
    settings_.connection.endpoint = {"127.0.0.1", server_->port(), ""};
    settings_.connection.timeout = std::chrono::seconds(10);
    token_ = server_->token();
}

bool sync_harness::run_once() {
    boost::asio::io_context ioc(1);
    isync::sync::clock_source clock{[this] { return now_ms_; }, [] { return 0.5; }};
    isync::sync::engine engine(ioc.get_executor(), *tls_, *store_, settings_, isync::config::secret(token_), clock);
    bool ok = false;
    boost::asio::co_spawn(ioc, engine.run_once(), [&](std::exception_ptr e, bool all_ok) {
        if (e) std::rethrow_exception(e);
        ok = all_ok;
    });
    ioc.run();
    stats_ = engine.stats();
    source_stats_ = engine.source();
    last_status_ = engine.last_status();
    return ok;
}

::testing::AssertionResult sync_harness::database_matches_dataset() {
    std::vector<std::size_t> expected_indexes;
    server_->with_dataset([&](const fake_api::dataset& data) {
        for (std::size_t i = 0; i < data.size(); ++i) {
            const auto& pair = data.pairs()[data.pair_of(i)];
            if (std::find(settings_.sync.pairs.begin(), settings_.sync.pairs.end(), pair) != settings_.sync.pairs.end())
                expected_indexes.push_back(i);
        }
    });
    std::size_t missing = 0, different = 0;
    std::string report;
    for (std::size_t i : expected_indexes) {
        const auto expected = in_database_order(server_->expected_incident(i));
        const auto got = read_incident(*db_, expected.id);
        if (!got) {
            if (++missing <= 3) report += fmt::format("missing {}\n", expected.id);
        } else if (*got != expected) {
            if (++different <= 3)
                report += fmt::format("different {}:\n  db:       {}\n  expected: {}\n", expected.id, got->raw_json,
                                      expected.raw_json);
        }
    }
    const auto in_db = incident_ids(*db_).size();
    if (missing || different || in_db != expected_indexes.size())
        return ::testing::AssertionFailure() << missing << " missing, " << different << " different, " << in_db
                                             << " in the database, " << expected_indexes.size() << " expected\n"
                                             << report;
    return ::testing::AssertionSuccess() << expected_indexes.size() << " incidents match";
}

}  // namespace test_support
