// The daemon as a process with database.url: `once` syncs the fake API into
// PostgreSQL, `status` and `check-config` read it, and the database password
// never appears in any output, at trace, on the success and error paths.

#include "app/arguments.hpp"
#include "pgstore/pg_reader_indexes.hpp"
#include "pgstore/pg_schema.hpp"
#include "pgstore/pg_store.hpp"
#include "postgresql/pg_test_server.hpp"
#include "support/daemon_fixture.hpp"
#include "support/daemon_probe.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <string>

using test_support::daemon_fixture;
using test_support::daemon_options;
using namespace std::chrono_literals;

namespace {

std::string write_password_file(const daemon_fixture& f, const std::string& password, mode_t mode = 0600) {
    const std::string path = f.dir().file("db-password");
    {
        std::ofstream out(path, std::ios::trunc);
        out << password << "\n";
    }
    ::chmod(path.c_str(), mode);
    return path;
}

// The URL of `db` as role isync_pw, which must give a password.
std::string password_role_url(const pg_test::fresh_database& db) {
    return fmt::format("postgresql://isync_pw@127.0.0.1:{}/{}", pg_test::port(), db.name());
}

TEST(DaemonOnPostgresql, OnceSyncsEveryPairAndStatusAndCheckConfigReadIt) {
    pg_test::fresh_database db;
    daemon_options o;
    o.interval = "1h";  // `status --check` allows three intervals since the last success
    o.extra_database_yaml = "  url: " + db.url() + "\n";
    daemon_fixture f(o);
    ASSERT_EQ(f.run("once", "once"), 0) << f.output("once");
    EXPECT_FALSE(std::filesystem::exists(f.db_path())) << "database.url set, yet a SQLite file was made";

    auto conn = db.connect();
    std::size_t expected = 0, wrong = 0;
    f.server().with_dataset([&](const fake_api::dataset& data) {
        for (std::size_t i = 0; i < data.size(); ++i) {
            ++expected;
            auto r = conn->exec("SELECT raw_json FROM incidents WHERE id = $1", {data.id(i)});
            if (r.rows() != 1 || r.text(0, 0) != data.json(i)) ++wrong;
        }
    });
    EXPECT_EQ(expected, 2'000u);
    EXPECT_EQ(wrong, 0u);
    EXPECT_EQ(conn->exec("SELECT COUNT(*) FROM incidents").int64(0, 0), 2'000);
    EXPECT_EQ(conn->exec("SELECT COUNT(*) FROM sync_state WHERE watermark_ms IS NOT NULL").int64(0, 0), 2);
    EXPECT_EQ(conn->exec("SELECT COUNT(*) FROM sync_runs WHERE status <> 'ok'").int64(0, 0), 0);
    // The reader indexes the first backfill left out were built before it exited.
    EXPECT_TRUE(isync::pgstore::missing_pg_deferred_indexes(*conn).empty());
    EXPECT_TRUE(test_support::read_file(f.dir().path() / "once.stderr").find("reader index") != std::string::npos)
        << f.output("once");

    ASSERT_EQ(f.run("status", "status", {"--json"}), 0) << f.output("status");
    rapidjson::Document doc;
    doc.Parse(test_support::read_file(f.dir().path() / "status.stdout").c_str());
    ASSERT_TRUE(doc.IsObject()) << f.output("status");
    ASSERT_EQ(doc["pairs"].Size(), 2u);
    std::int64_t total = 0;
    for (const auto& p : doc["pairs"].GetArray()) {
        EXPECT_TRUE(p["healthy"].GetBool());
        total += p["incidents"].GetInt64();
    }
    EXPECT_EQ(total, 2'000);
    EXPECT_EQ(f.run("status", "check", {"--check"}), 0) << f.output("check");

    ASSERT_EQ(f.run("check-config", "check"), 0) << f.output("check");
    EXPECT_NE(
        f.output("check").find(fmt::format("schema version {}", isync::pgstore::latest_postgresql_schema_version())),
        std::string::npos)
        << f.output("check");

    // A second pass re-reads its overlap and writes no incident.
    const auto last_run = conn->exec("SELECT MAX(run_id) FROM sync_runs").int64(0, 0);
    ASSERT_EQ(f.run("once", "again"), 0) << f.output("again");
    EXPECT_EQ(conn->exec("SELECT COALESCE(SUM(incidents_new + incidents_changed), -1) FROM sync_runs WHERE run_id > $1",
                         {std::to_string(last_run)})
                  .int64(0, 0),
              0);
}

TEST(DaemonOnPostgresql, ThePasswordNeverAppearsInAnyOutput) {
    pg_test::fresh_database db;
    const std::string canary = "canary-Wr0ng-p4ssw0rd-7f3a9";
    daemon_options o;
    o.log_level = "trace";
    o.extra_database_yaml = "  url: " + password_role_url(db) + "\n  password_file: db-password\n";
    daemon_fixture f(o);

    // Refused: a wrong password says what to check, and not what it was.
    write_password_file(f, canary);
    for (const char* verb : {"once", "check-config", "status"}) {
        const int code = f.run(verb, std::string("wrong-") + verb);
        EXPECT_NE(code, 0) << verb;
        const auto out = f.output(std::string("wrong-") + verb);
        EXPECT_EQ(out.find(canary), std::string::npos) << verb << ": " << out;
        EXPECT_NE(out.find("password authentication failed"), std::string::npos) << verb << ": " << out;
        EXPECT_NE(out.find("database.password_file"), std::string::npos) << verb << ": " << out;
    }
    EXPECT_EQ(f.run("once", "wrong-exit"), isync::app::exit_database);

    // Accepted: the right password syncs, and appears nowhere either.
    const std::string password = pg_test::password_role_password();
    write_password_file(f, password);
    ASSERT_EQ(f.run("once", "right"), 0) << f.output("right");
    EXPECT_EQ(f.run("check-config", "right-check"), 0) << f.output("right-check");
    EXPECT_EQ(f.run("status", "right-status"), 0) << f.output("right-status");
    for (const char* name : {"right", "right-check", "right-status"}) {
        EXPECT_EQ(f.output(name).find(password), std::string::npos) << name;
        EXPECT_NE(f.output(name).find("isync_pw@127.0.0.1"), std::string::npos) << name << ": " << f.output(name);
    }
    EXPECT_NE(f.output("right-check").find("password from database.password_file"), std::string::npos)
        << f.output("right-check");
    EXPECT_GT(db.connect()->exec("SELECT COUNT(*) FROM incidents").int64(0, 0), 0);
    // The database holds it nowhere (the token neither).
    auto conn = db.connect();
    for (const std::string& secret : {password, std::string("test-token")}) {
        auto hits = conn->exec(
            "SELECT (SELECT COUNT(*) FROM sync_runs WHERE error LIKE '%' || $1 || '%') + "
            "(SELECT COUNT(*) FROM sync_state WHERE last_error LIKE '%' || $1 || '%')",
            {secret});
        EXPECT_EQ(hits.int64(0, 0), 0);
    }
}

TEST(DaemonOnPostgresql, APasswordInTheUrlOrAnOpenPasswordFileIsRefused) {
    pg_test::fresh_database db;
    const std::string canary = "canary-in-url-5521";
    daemon_options o;
    o.extra_database_yaml =
        fmt::format("  url: postgresql://isync_pw:{}@127.0.0.1:{}/{}\n", canary, pg_test::port(), db.name());
    daemon_fixture f(o);
    EXPECT_EQ(f.run("check-config", "url"), isync::app::exit_config);
    EXPECT_NE(f.output("url").find("database.url: holds a password"), std::string::npos) << f.output("url");
    EXPECT_EQ(f.output("url").find(canary), std::string::npos) << f.output("url");

    daemon_options open;
    open.extra_database_yaml = "  url: " + password_role_url(db) + "\n  password_file: db-password\n";
    daemon_fixture g(open);
    write_password_file(g, pg_test::password_role_password(), 0644);
    EXPECT_EQ(g.run("once", "open"), isync::app::exit_config);
    EXPECT_NE(g.output("open").find("chmod 600"), std::string::npos) << g.output("open");
}

// `once` renews its leases as `run` does: a backfill that lasts longer than
// a lease (here about 4 s against 2.5 s) completes instead of stopping when
// the daemon's own clock says the lease may have lapsed.
TEST(DaemonOnPostgresql, OnceRenewsItsLeasesThroughABackfillLongerThanALease) {
    pg_test::fresh_database db;
    daemon_options o;
    o.pairs = 1;
    o.faults.delay = 100ms;                     // 40 pages, one at a time: about 4 s
    o.extra_api_yaml = "  max_in_flight: 1\n";  // longer than the lease below lasts
    o.extra_database_yaml = "  url: " + db.url() + "\n  lease_ttl: 3s\n";
    daemon_fixture f(o);
    const auto started = std::chrono::steady_clock::now();
    ASSERT_EQ(f.run("once", "once"), 0) << f.output("once");
    ASSERT_GT(std::chrono::steady_clock::now() - started, 3s) << "the backfill did not outlast a lease";
    auto conn = db.connect();
    EXPECT_EQ(conn->exec("SELECT COUNT(*) FROM incidents").int64(0, 0), 2'000);
    EXPECT_EQ(conn->exec("SELECT COUNT(*) FROM sync_runs WHERE status <> 'ok'").int64(0, 0), 0);
    EXPECT_EQ(conn->exec("SELECT COUNT(*) FROM sync_state WHERE lease_owner IS NOT NULL").int64(0, 0), 0);
}

}  // namespace

namespace {

// resync moves no watermark, but it writes the pairs' incidents: it needs
// their leases, and says which pairs a running daemon holds.
TEST(DaemonOnPostgresql, ResyncNeedsTheLeasesOfThePairsItReReads) {
    pg_test::fresh_database db;
    daemon_options o;
    o.extra_database_yaml = "  url: " + db.url() + "\n";
    daemon_fixture f(o);
    ASSERT_EQ(f.run("once", "once"), 0) << f.output("once");
    {
        // Another daemon, holding both pairs.
        auto holder = isync::pgstore::pg_store::open({db.url(), std::nullopt, "another daemon"});
        ASSERT_TRUE(holder) << holder.error().message;
        for (const auto& p : f.pairs()) {
            auto claimed = (*holder)->claim_pair(p, f.pairs().size());
            ASSERT_TRUE(claimed && *claimed);
        }
        EXPECT_EQ(f.run("resync", "held", {"--all", "--from", "2d"}), isync::app::exit_sync_failed) << f.output("held");
        EXPECT_NE(f.output("held").find("not re-read: another daemon sharing the database polls it"), std::string::npos)
            << f.output("held");
    }
    // Its clean stop ended the leases: now the resync runs.
    EXPECT_EQ(f.run("resync", "free", {"--all", "--from", "2d"}), 0) << f.output("free");
    EXPECT_GT(db.connect()->exec("SELECT COUNT(*) FROM sync_runs WHERE kind = 'resync' AND status = 'ok'").int64(0, 0),
              0);
}

// A busy database (here a lock held past lock_timeout; in production a
// deadlock with another daemon writing the same shared scripts) fails the
// poll, and the pair is polled again within seconds, not at the next interval.
TEST(DaemonOnPostgresql, APollThatFoundTheDatabaseBusyIsRetriedWithinSeconds) {
    pg_test::fresh_database db;
    {
        auto schema = isync::pgstore::pg_store::open({db.url(), std::nullopt, "schema"});
        ASSERT_TRUE(schema) << schema.error().message;
    }
    auto admin = db.connect();
    admin->exec("ALTER DATABASE " + db.name() + " SET lock_timeout = '200ms'");
    auto holder = db.connect();
    holder->exec("BEGIN");
    holder->exec("LOCK TABLE incidents IN EXCLUSIVE MODE");  // reads go on, writes wait

    daemon_options o;
    o.interval = "1h";
    o.extra_database_yaml = "  url: " + db.url() + "\n";
    daemon_fixture f(o);
    auto daemon = f.start("run", "run");
    const auto count = [&](const std::string& sql) { return admin->exec(sql).int64(0, 0); };
    ASSERT_TRUE(test_support::wait_until(
        [&] { return count("SELECT COUNT(*) FROM sync_runs WHERE status = 'failed' AND error LIKE '%lock%'") > 0; },
        std::chrono::seconds(30)))
        << daemon->stderr_text();
    EXPECT_EQ(count("SELECT COUNT(*) FROM incidents"), 0);
    holder->exec("COMMIT");
    // Without the retry the next poll would come in an hour.
    EXPECT_TRUE(test_support::wait_until([&] { return count("SELECT COUNT(*) FROM incidents") == 2'000; },
                                         std::chrono::seconds(30)))
        << daemon->stderr_text();
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(std::chrono::seconds(10)), std::optional<int>(0)) << daemon->stderr_text();
}

// SIGHUP and /readyz with database.url: a pair added to the config is
// polled after the reload, and readiness judges the pairs from PostgreSQL.
TEST(DaemonOnPostgresql, SighupAddsAPairAndReadyzJudgesThePairs) {
    pg_test::fresh_database db;
    daemon_options o;
    o.extra_database_yaml = "  url: " + db.url() + "\n";
    daemon_fixture f(o);
    const auto all_pairs = f.pairs();
    f.pairs().pop_back();
    f.write_config();
    auto daemon = f.start("run", "run");
    auto conn = db.connect();
    const auto caught_up = [&](const isync::config::pair& p) {
        try {
            auto r =
                conn->exec("SELECT watermark_ms FROM sync_state WHERE app_id = $1 AND tld = $2", {p.app_id, p.tld});
            return r.rows() == 1 && r.int64(0, 0) >= f.data_end_ms();
        } catch (const std::exception&) {
            return false;  // no schema yet
        }
    };
    ASSERT_TRUE(test_support::wait_until([&] { return caught_up(all_pairs[0]); }, std::chrono::seconds(30)))
        << daemon->stderr_text();
    const auto port = test_support::metrics_port(*daemon);
    ASSERT_TRUE(port) << daemon->stderr_text();
    EXPECT_TRUE(test_support::wait_until([&] { return test_support::http_get(*port, "/readyz").status == 200; },
                                         std::chrono::seconds(10)));
    EXPECT_FALSE(caught_up(all_pairs[1]));

    f.pairs() = all_pairs;
    f.write_config();
    daemon->signal(SIGHUP);
    ASSERT_TRUE(test_support::wait_until([&] { return caught_up(all_pairs[1]); }, std::chrono::seconds(30)))
        << daemon->stderr_text();
    const auto ready = test_support::http_get(*port, "/readyz");
    EXPECT_EQ(ready.status, 200u) << ready.body;
    EXPECT_NE(ready.body.find(all_pairs[1].app_id), std::string::npos) << ready.body;
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(std::chrono::seconds(10)), std::optional<int>(0)) << daemon->stderr_text();
    EXPECT_NE(daemon->stderr_text().find("SIGHUP: configuration and token reloaded"), std::string::npos);
    EXPECT_EQ(conn->exec("SELECT COUNT(*) FROM incidents").int64(0, 0), 2'000);
}

}  // namespace
