#pragma once
// Finds the Code Defender API token. The token never appears in a returned
// message; only the place it came from does.

#include "config/config.hpp"
#include "config/secret.hpp"
#include "util/error.hpp"

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

namespace isync::config {

struct loaded_token {
    secret token;
    std::string source;  // for the log, e.g. "$CREDENTIALS_DIRECTORY/human-api-token"
};

// Where Docker mounts a secret named human_api_token.
inline const std::filesystem::path default_docker_secret = "/run/secrets/human_api_token";

// Returns the token from the first of these places that has one:
//   1. the environment variable HUMAN_API_TOKEN;
//   2. the file $CREDENTIALS_DIRECTORY/human-api-token (systemd LoadCredential=);
//   3. the file api.token_file;
//   4. the file `docker_secret` (Docker secrets).
// A file that does not exist is skipped; whitespace around the token is
// removed. Returns errc::config when the first token found is empty or holds
// anything but printable ASCII, when a token file exists but cannot be read,
// is not a regular file or is readable by group or others (mode & 077), or
// when no place has a token (the message lists all four).
result<loaded_token> load_token(const config& cfg, const std::function<const char*(const char*)>& getenv = ::getenv,
                                const std::filesystem::path& docker_secret = default_docker_secret);

// The proxy user's password from api.proxy_password_file, under the token
// file's rules (a regular file, mode 600 or 400); one line, the trailing
// newline dropped. The password never appears in a returned message.
result<secret> load_proxy_password(const std::filesystem::path& file);

struct loaded_password {
    secret password;
    std::string source;  // for the log, e.g. "database.password_file /etc/incident-sync/db-password"
};

// Where Docker mounts a secret named database_password.
inline const std::filesystem::path default_docker_database_secret = "/run/secrets/database_password";

// The PostgreSQL password, from the first of these that has one:
//   1. database.password_file (it must exist when set);
//   2. $CREDENTIALS_DIRECTORY/database-password (systemd LoadCredential=);
//   3. `docker_secret` (Docker secrets).
// nullopt when none has one: libpq then looks itself (PGPASSWORD, PGPASSFILE,
// ~/.pgpass), or the server needs none. The token file's rules apply (a
// regular file, mode 600 or 400, one line); the password never appears in a
// returned message.
result<std::optional<loaded_password>> load_database_password(
    const config& cfg, const std::function<const char*(const char*)>& getenv = ::getenv,
    const std::filesystem::path& docker_secret = default_docker_database_secret);

}  // namespace isync::config
