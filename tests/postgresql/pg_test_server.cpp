#include "postgresql/pg_test_server.hpp"

#include <fmt/format.h>

#include <unistd.h>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace pg_test {
namespace {

std::string read_line(const std::string& file) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    return line;
}

std::unique_ptr<isync::pgstore::pg_connection> connect_url(const std::string& u) {
    auto c = isync::pgstore::pg_connection::connect({u, std::nullopt, "incident-sync-tests"});
    if (!c) throw std::runtime_error(c.error().message);
    return std::move(*c);
}

}  // namespace

std::string server_dir() {
    const char* dir = std::getenv("ISYNC_TEST_PG_DIR");
    if (!dir || !*dir) {
        ADD_FAILURE() << "ISYNC_TEST_PG_DIR is not set: run this test through ctest, whose fixture `postgresql` "
                         "starts the server (tests/postgresql/pg_server.sh)";
        return "";
    }
    return dir;
}

std::string port() { return read_line(server_dir() + "/port"); }

std::string url(const std::string& dbname) {
    return fmt::format("postgresql://postgres@127.0.0.1:{}/{}", port(), dbname);
}

std::string password_role_password() { return read_line(server_dir() + "/pw_password"); }

fresh_database::fresh_database() {
    static std::atomic<int> counter{0};
    name_ = fmt::format("isync_test_{}_{}", ::getpid(), counter++);
    auto admin = connect_url(pg_test::url());
    admin->exec("DROP DATABASE IF EXISTS " + name_);
    admin->exec("CREATE DATABASE " + name_ + " TEMPLATE template0");
}

fresh_database::~fresh_database() {
    try {
        auto admin = connect_url(pg_test::url());
        admin->exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception&) {
        // The server is gone at the end of the run anyway.
    }
}

std::unique_ptr<isync::pgstore::pg_connection> fresh_database::connect() const { return connect_url(url()); }

}  // namespace pg_test
