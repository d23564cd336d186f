#include "app/postgresql_options.hpp"

#include "config_file/token.hpp"

namespace isync::app {

result<postgresql_target> postgresql_options(const config::config& cfg) {
    postgresql_target t;
    t.options.url = cfg.database.url;
    t.options.lease_ttl = cfg.database.lease_ttl;
    auto password = config::load_database_password(cfg);
    if (!password) return password.error();
    if (*password) {
        t.options.password = std::move((*password)->password);
        t.password_source = (*password)->source;
    } else {
        t.password_source = "libpq (PGPASSWORD, PGPASSFILE, ~/.pgpass, or none)";
    }
    return t;
}

}  // namespace isync::app
