#include "config_file/token.hpp"

#include "util/text.hpp"
#include "util/unique_fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

// Every message built here names a place or a file, never the text read from
// it: an error goes to the journal, which more people can read than the token.

namespace isync::config {
namespace {

namespace fs = std::filesystem;

constexpr const char* token_env = "HUMAN_API_TOKEN";
constexpr const char* credentials_env = "CREDENTIALS_DIRECTORY";
constexpr const char* credential_name = "human-api-token";

// A token is a few dozen bytes; the cap stops a wrong path (a log, a device)
// from being read whole.
constexpr std::size_t max_token_bytes = 64 << 10;

constexpr std::string_view env_fix = "set it to the token alone, or unset it";
constexpr std::string_view file_fix = "write only the token into it";

using util::unique_fd;

std::string errno_text(int code) { return std::system_category().message(code); }

// The token goes into an Authorization header: a space means a "Bearer "
// prefix or two values were stored, CR or LF would start a new header, and a
// non-ASCII byte means the wrong file.
bool is_printable_ascii(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// `what` names the place in messages ("token file /x", "$HUMAN_API_TOKEN").
result<loaded_token> make_token(std::string_view raw, std::string source, const std::string& what,
                                std::string_view fix) {
    const auto token = util::trim(raw);
    if (token.empty()) return make_error(errc::config, what + " is empty; " + std::string(fix));
    if (!is_printable_ascii(token))
        return make_error(errc::config,
                          what + " holds spaces, control characters or non-ASCII bytes; " + std::string(fix));
    return loaded_token{secret(std::string(token)), std::move(source)};
}

std::string mode_problem(std::string_view kind, const std::string& name, mode_t mode, std::string_view extra_fix) {
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode & 07777));
    const char* access = (mode & 044) != 0 ? "readable" : "accessible";
    return std::string(kind) + " " + name + " is " + access + " by group or others (mode " + octal +
           "); run: chmod 600 " + name + std::string(extra_fix);
}

// The file's text, nullopt when there is no such file (the next place is
// tried), or an error that ends the search: a file that exists but is wrong
// is a mistake to fix, not a reason to use some other token.
result<std::optional<std::string>> read_token_file(const fs::path& file, std::string_view extra_fix,
                                                   const std::string& kind = "token file") {
    const std::string name = file.string();
    // O_NONBLOCK so a FIFO at this path cannot hang start-up; the
    // regular-file check below then refuses it.
    const unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (fd.get() < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return std::optional<std::string>();
        return make_error(errc::config, "cannot read " + kind + " " + name + ": " + errno_text(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return make_error(errc::config, "cannot read " + kind + " " + name + ": " + errno_text(errno));
    if (!S_ISREG(st.st_mode))
        return make_error(errc::config, kind + " " + name + " is not a regular file; " + std::string(file_fix));
    // Checked on the open file rather than the path, so nothing can be
    // swapped in between the check and the read.
    if ((st.st_mode & 077) != 0) return make_error(errc::config, mode_problem(kind, name, st.st_mode, extra_fix));

    std::string text;
    std::array<char, 4096> buffer;
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return make_error(errc::config, "cannot read " + kind + " " + name + ": " + errno_text(errno));
        if (n == 0) return std::optional<std::string>(std::move(text));
        text.append(buffer.data(), static_cast<std::size_t>(n));
        if (text.size() > max_token_bytes)
            return make_error(errc::config, kind + " " + name + " is larger than 64 KiB; " + std::string(file_fix));
    }
}

// A token, nothing at this place, or an error that ends the search.
using attempt = result<std::optional<loaded_token>>;

attempt from_file(const fs::path& file, std::string source, std::string_view extra_fix = {}) {
    auto text = read_token_file(file, extra_fix);
    if (!text) return text.error();
    if (!*text) return std::optional<loaded_token>();
    auto token = make_token(**text, std::move(source), "token file " + file.string(), file_fix);
    if (!token) return token.error();
    return std::optional<loaded_token>(std::move(*token));
}

}  // namespace

result<loaded_token> load_token(const config& cfg, const std::function<const char*(const char*)>& getenv,
                                const std::filesystem::path& docker_secret) {
    std::vector<std::string> looked;  // "<place> (<why it had no token>)", for the final message

    if (const char* value = getenv(token_env))
        return make_token(value, "$HUMAN_API_TOKEN", "$HUMAN_API_TOKEN", env_fix);
    looked.emplace_back("$HUMAN_API_TOKEN (not set)");

    // The service manager's credential comes before api.token_file: when
    // systemd hands the daemon a credential, that is the token meant for it,
    // and a token file next to the config is typically root's copy that the
    // unit's user cannot (and should not) read.
    const char* credentials = getenv(credentials_env);
    if (credentials == nullptr || *credentials == '\0') {
        looked.emplace_back("$CREDENTIALS_DIRECTORY/human-api-token ($CREDENTIALS_DIRECTORY not set)");
    } else {
        const fs::path file = fs::path(credentials) / credential_name;
        auto found = from_file(file, "$CREDENTIALS_DIRECTORY/human-api-token");
        if (!found) return found.error();
        if (*found) return std::move(**found);
        looked.push_back("$CREDENTIALS_DIRECTORY/human-api-token (no such file: " + file.string() + ")");
    }

    if (cfg.api.token_file.empty()) {
        looked.emplace_back("api.token_file (not set)");
    } else {
        auto found = from_file(cfg.api.token_file, "api.token_file " + cfg.api.token_file);
        if (!found) return found.error();
        if (*found) return std::move(**found);
        looked.push_back("api.token_file (no such file: " + cfg.api.token_file + ")");
    }

    // Docker swarm mounts secrets 0444 unless told otherwise, and chmod
    // cannot change a mounted secret, so say where the mode is set.
    auto found = from_file(docker_secret, docker_secret.string(),
                           " (for a Docker secret, set mode: 0400 in the service's secrets entry)");
    if (!found) return found.error();
    if (*found) return std::move(**found);
    looked.push_back(docker_secret.string() + " (no such file)");

    return make_error(errc::config, "no API token found; looked at " + util::join(looked, ", ") +
                                        "; put the token in one of these (a token file must be mode 600 or 400)");
}

namespace {

// A password file's one line (the trailing newline is not part of it), under
// the token file's rules; nullopt when the file does not exist.
result<std::optional<secret>> read_password_file(const fs::path& file, const std::string& kind,
                                                 std::string_view extra_fix = {}) {
    auto text = read_token_file(file, extra_fix, kind);
    if (!text) return text.error();
    if (!*text) return std::optional<secret>();
    std::string_view password = **text;
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.remove_suffix(1);
    if (password.empty())
        return make_error(errc::config, kind + " " + file.string() + " is empty; write the password into it");
    if (password.find_first_of("\r\n") != std::string_view::npos)
        return make_error(errc::config,
                          kind + " " + file.string() + " holds more than one line; write the password alone");
    return std::optional<secret>(secret(std::string(password)));
}

}  // namespace

result<secret> load_proxy_password(const std::filesystem::path& file) {
    const std::string kind = "proxy password file";
    auto password = read_password_file(file, kind);
    if (!password) return password.error();
    if (!*password)
        return make_error(errc::config, kind + " " + file.string() + " does not exist (api.proxy_password_file)");
    return std::move(**password);
}

result<std::optional<loaded_password>> load_database_password(const config& cfg,
                                                              const std::function<const char*(const char*)>& getenv,
                                                              const std::filesystem::path& docker_secret) {
    const std::string kind = "database password file";
    if (!cfg.database.password_file.empty()) {
        auto password = read_password_file(cfg.database.password_file, kind);
        if (!password) return password.error();
        if (!*password)
            return make_error(errc::config,
                              kind + " " + cfg.database.password_file + " does not exist (database.password_file)");
        return std::optional<loaded_password>(
            loaded_password{std::move(**password), "database.password_file " + cfg.database.password_file});
    }
    if (const char* credentials = getenv(credentials_env); credentials && *credentials) {
        auto password = read_password_file(fs::path(credentials) / "database-password", kind);
        if (!password) return password.error();
        if (*password)
            return std::optional<loaded_password>(
                loaded_password{std::move(**password), "$CREDENTIALS_DIRECTORY/database-password"});
    }
    auto password = read_password_file(docker_secret, kind,
                                       " (for a Docker secret, set mode: 0400 in the service's secrets entry)");
    if (!password) return password.error();
    if (*password)
        return std::optional<loaded_password>(loaded_password{std::move(**password), docker_secret.string()});
    return std::optional<loaded_password>();
}

}  // namespace isync::config
