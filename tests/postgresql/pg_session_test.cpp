// The daemon's PostgreSQL session: UTC, a plan per execution (a generic plan
// cached while a fresh database's tables were empty scans them whole later),
// and the store's own settings; all of it again after the server dropped
// the connection and the store reconnected.

#include "pgstore/pg_connection.hpp"
#include "postgresql/pg_test_server.hpp"

#include <gtest/gtest.h>

#include <string>

using isync::pgstore::pg_connection;

namespace {

std::string show(pg_connection& c, const std::string& setting) {
    return std::string(c.exec("SHOW " + setting).text(0, 0));
}

TEST(PostgresqlSession, ItsSettingsHoldAgainAfterAReconnect) {
    pg_test::fresh_database db;
    auto c = pg_connection::connect({db.url()});
    ASSERT_TRUE(c) << c.error().message;
    pg_connection& conn = **c;
    conn.set_session("SET idle_in_transaction_session_timeout = 4321");
    const auto check = [&] {
        EXPECT_EQ(show(conn, "TimeZone"), "UTC");
        EXPECT_EQ(show(conn, "plan_cache_mode"), "force_custom_plan");
        EXPECT_EQ(show(conn, "idle_in_transaction_session_timeout"), "4321ms");
    };
    check();

    // The server ends the session (a restart, a failover, an administrator).
    const std::string first_pid(conn.exec("SELECT pg_backend_pid()").text(0, 0));
    auto admin = db.connect();
    admin->exec("SELECT pg_terminate_backend($1::int)", {first_pid});
    EXPECT_ANY_THROW(conn.exec("SELECT 1"));
    ASSERT_TRUE(conn.broken());
    ASSERT_TRUE(conn.reconnect());
    EXPECT_NE(std::string(conn.exec("SELECT pg_backend_pid()").text(0, 0)), first_pid);
    check();
}

}  // namespace
