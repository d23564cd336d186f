#pragma once
// The connection options of database.url, with the password from where the
// configuration says (config_file/token.hpp): shared by `run`/`once`,
// `check-config` and `status`, so all three connect the same way.

#include "config/config.hpp"
#include "pgstore/pg_connection.hpp"
#include "util/error.hpp"

#include <string>

namespace isync::app {

struct postgresql_target {
    pgstore::connect_options options;
    std::string password_source;  // for the log: where the password came from, never the password
};

// errc::config when a password file is wrong (mode, missing, empty).
result<postgresql_target> postgresql_options(const config::config& cfg);

}  // namespace isync::app
