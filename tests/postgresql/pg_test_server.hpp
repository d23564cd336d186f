#pragma once
// The PostgreSQL server that the ctest fixture `postgresql` started for this
// run (tests/postgresql/pg_server.sh; its directory in $ISYNC_TEST_PG_DIR),
// and a fresh database on it per test. A test that finds no server fails: in
// CI the fixture always runs, and a skipped backend is an untested one.

#include "pgstore/pg_connection.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace pg_test {

// The server's directory, or "" (with a test failure) when there is none.
std::string server_dir();
// Its port.
std::string port();
// A superuser URL for `dbname`.
std::string url(const std::string& dbname = "postgres");
// The password of role isync_pw (which must give one).
std::string password_role_password();

// A database made for one test and dropped after it.
class fresh_database {
public:
    fresh_database();
    ~fresh_database();
    fresh_database(const fresh_database&) = delete;
    fresh_database& operator=(const fresh_database&) = delete;

    const std::string& name() const { return name_; }
    std::string url() const { return pg_test::url(name_); }
    // A connection as the superuser, for checks.
    std::unique_ptr<isync::pgstore::pg_connection> connect() const;

private:
    std::string name_;
};

}  // namespace pg_test
