#include "config_file/token.hpp"

#include <gtest/gtest.h>
#include <spdlog/fmt/fmt.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

namespace fs = std::filesystem;
using isync::config::load_token;
using isync::config::secret;

namespace {

// Recognisable in any output it leaks into.
constexpr const char* canary = "CANARY-7f3e9a-DO-NOT-LOG";

class Token : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "isync-token-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
        docker_secret_ = dir_ / "docker/human_api_token";
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    fs::path write(const fs::path& relative, std::string_view text, fs::perms mode = fs::perms(0600)) {
        const fs::path file = dir_ / relative;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << text;
        fs::permissions(file, mode, fs::perm_options::replace);
        return file;
    }

    // The environment the loader sees: only what the test put in env_.
    isync::result<isync::config::loaded_token> load() const {
        const auto getenv = [this](const char* name) -> const char* {
            const auto it = env_.find(name);
            return it == env_.end() ? nullptr : it->second.c_str();
        };
        return load_token(cfg_, getenv, docker_secret_);
    }

    std::string error() const {
        const auto loaded = load();
        EXPECT_FALSE(loaded.has_value()) << "loaded a token from " << loaded->source;
        if (loaded) return {};
        EXPECT_EQ(loaded.error().code, isync::errc::config);
        return loaded.error().message;
    }

    fs::path dir_;
    fs::path docker_secret_;
    isync::config::config cfg_;
    std::map<std::string, std::string, std::less<>> env_;
};

TEST_F(Token, EnvironmentWinsOverEveryFile) {
    env_["HUMAN_API_TOKEN"] = "from-env";
    cfg_.api.token_file = write("token", "from-file\n").string();
    env_["CREDENTIALS_DIRECTORY"] = (dir_ / "creds").string();
    write("creds/human-api-token", "from-credentials");
    write("docker/human_api_token", "from-docker");

    const auto loaded = load();
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    EXPECT_EQ(loaded->token.reveal(), "from-env");
    EXPECT_EQ(loaded->source, "$HUMAN_API_TOKEN");
}

// systemd's credential is the token meant for the unit; the token file may be
// root's copy that the unit's user cannot read (the documented install).
TEST_F(Token, CredentialsDirectoryWinsOverTokenFileAndDocker) {
    cfg_.api.token_file = write("token", "from-file\n").string();
    env_["CREDENTIALS_DIRECTORY"] = (dir_ / "creds").string();
    write("creds/human-api-token", "from-credentials");
    write("docker/human_api_token", "from-docker");

    const auto loaded = load();
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    EXPECT_EQ(loaded->token.reveal(), "from-credentials");
    EXPECT_EQ(loaded->source, "$CREDENTIALS_DIRECTORY/human-api-token");
}

TEST_F(Token, UnreadableTokenFileIsNeverOpenedWhenACredentialIsGiven) {
    // Mode 000 stands in for a root-only file: the unit's user gets EACCES
    // (root would not, so the mode is what the test can control).
    cfg_.api.token_file = write("token", canary, fs::perms(0)).string();
    env_["CREDENTIALS_DIRECTORY"] = (dir_ / "creds").string();
    write("creds/human-api-token", "from-credentials");

    const auto loaded = load();
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    EXPECT_EQ(loaded->token.reveal(), "from-credentials");
}

TEST_F(Token, TokenFileWinsOverDocker) {
    cfg_.api.token_file = write("token", "from-file\n").string();
    write("docker/human_api_token", "from-docker");

    const auto loaded = load();
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    EXPECT_EQ(loaded->token.reveal(), "from-file");
    EXPECT_EQ(loaded->source, "api.token_file " + cfg_.api.token_file);
}

TEST_F(Token, CredentialsDirectoryWinsOverDocker) {
    env_["CREDENTIALS_DIRECTORY"] = (dir_ / "creds").string();
    write("creds/human-api-token", "from-credentials\n");
    write("docker/human_api_token", "from-docker");

    const auto loaded = load();
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    EXPECT_EQ(loaded->token.reveal(), "from-credentials");
    EXPECT_EQ(loaded->source, "$CREDENTIALS_DIRECTORY/human-api-token");
}

TEST_F(Token, DockerSecretIsTheLastPlace) {
    write("docker/human_api_token", "from-docker\r\n");

    const auto loaded = load();
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    EXPECT_EQ(loaded->token.reveal(), "from-docker");
    EXPECT_EQ(loaded->source, docker_secret_.string());
}

TEST_F(Token, ConfiguredFileThatDoesNotExistIsSkipped) {
    cfg_.api.token_file = (dir_ / "absent").string();
    write("docker/human_api_token", "from-docker");

    const auto loaded = load();
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    EXPECT_EQ(loaded->token.reveal(), "from-docker");
}

TEST_F(Token, SurroundingWhitespaceIsStripped) {
    cfg_.api.token_file = write("token", "  abc123 \n\n").string();
    const auto loaded = load();
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    EXPECT_EQ(loaded->token.reveal(), "abc123");
}

TEST_F(Token, Mode0400IsAccepted) {
    cfg_.api.token_file = write("token", "read-only", fs::perms(0400)).string();
    const auto loaded = load();
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    EXPECT_EQ(loaded->token.reveal(), "read-only");
}

TEST_F(Token, GroupReadableFileIsRefused) {
    const std::string file = write("token", canary, fs::perms(0640)).string();
    cfg_.api.token_file = file;
    EXPECT_EQ(error(), "token file " + file + " is readable by group or others (mode 0640); run: chmod 600 " + file);
}

TEST_F(Token, OtherReadableFileIsRefusedAndNotSkipped) {
    // A wrong file is a mistake to fix, not a reason to use the next place.
    const std::string file = write("creds/human-api-token", canary, fs::perms(0604)).string();
    env_["CREDENTIALS_DIRECTORY"] = (dir_ / "creds").string();
    write("docker/human_api_token", "from-docker");
    EXPECT_EQ(error(), "token file " + file + " is readable by group or others (mode 0604); run: chmod 600 " + file);
}

TEST_F(Token, DockerSecretModeMessageSaysWhereToSetIt) {
    write("docker/human_api_token", canary, fs::perms(0444));
    const std::string file = docker_secret_.string();
    EXPECT_EQ(error(), "token file " + file + " is readable by group or others (mode 0444); run: chmod 600 " + file +
                           " (for a Docker secret, set mode: 0400 in the service's secrets entry)");
}

TEST_F(Token, GroupWritableFileIsRefused) {
    const std::string file = write("token", canary, fs::perms(0620)).string();
    cfg_.api.token_file = file;
    EXPECT_EQ(error(), "token file " + file + " is accessible by group or others (mode 0620); run: chmod 600 " + file);
}

TEST_F(Token, NoTokenFoundListsTheFourPlaces) {
    EXPECT_EQ(error(),
              "no API token found; looked at $HUMAN_API_TOKEN (not set), "
              "$CREDENTIALS_DIRECTORY/human-api-token ($CREDENTIALS_DIRECTORY not set), api.token_file (not set), " +
                  docker_secret_.string() +
                  " (no such file); put the token in one of these (a token file must be mode 600 or 400)");
}

TEST_F(Token, NoTokenFoundNamesTheFilesItTried) {
    cfg_.api.token_file = (dir_ / "token").string();
    env_["CREDENTIALS_DIRECTORY"] = (dir_ / "creds").string();
    EXPECT_EQ(error(),
              "no API token found; looked at $HUMAN_API_TOKEN (not set), "
              "$CREDENTIALS_DIRECTORY/human-api-token (no such file: " +
                  (dir_ / "creds/human-api-token").string() +
                  "), api.token_file (no such file: " + (dir_ / "token").string() + "), " + docker_secret_.string() +
                  " (no such file); put the token in one of these (a token file must be mode 600 or 400)");
}

TEST_F(Token, EmptyAfterTrimIsRefused) {
    const std::string file = write("token", " \n\t\n").string();
    cfg_.api.token_file = file;
    EXPECT_EQ(error(), "token file " + file + " is empty; write only the token into it");
}

TEST_F(Token, EmptyEnvironmentVariableIsRefused) {
    env_["HUMAN_API_TOKEN"] = "";
    write("docker/human_api_token", "from-docker");
    EXPECT_EQ(error(), "$HUMAN_API_TOKEN is empty; set it to the token alone, or unset it");
}

TEST_F(Token, DirectoryIsNotATokenFile) {
    fs::create_directories(dir_ / "token");
    cfg_.api.token_file = (dir_ / "token").string();
    EXPECT_EQ(error(), "token file " + cfg_.api.token_file + " is not a regular file; write only the token into it");
}

TEST_F(Token, NeverInErrorText) {
    const auto expect_hidden = [&](const std::string& what) {
        const std::string message = error();
        EXPECT_FALSE(message.empty()) << what;
        EXPECT_EQ(message.find("CANARY"), std::string::npos) << what << ": " << message;
    };

    cfg_.api.token_file = write("token", std::string(canary) + "\n", fs::perms(0644)).string();
    expect_hidden("too-open file");

    cfg_.api.token_file = write("token2", std::string("Bearer ") + canary).string();
    expect_hidden("file with a space");

    env_["HUMAN_API_TOKEN"] = std::string(canary) + "\r\nX-Injected: 1";
    expect_hidden("environment with CR LF");
}

// `spdlog::info("{}", token)` and `std::cerr << token` must not compile, and
// a test failure must print stars.
template <class T>
concept streamable = requires(std::ostream& os, const T& value) {
    os << value;
};

TEST(TokenSecret, CannotBeLoggedByAccident) {
    static_assert(!streamable<secret>);
    static_assert(!fmt::is_formattable<secret>::value);
    static_assert(!std::is_convertible_v<secret, std::string>);
    static_assert(!std::is_convertible_v<secret, std::string_view>);
    EXPECT_EQ(::testing::PrintToString(secret(canary)), "***");
    EXPECT_EQ(secret(canary).reveal(), canary);
}

}  // namespace

// The token stays a config::secret from the file to the header: the daemon's
// code reveals it in one place only, where the Authorization header is
// written (http/connection.cpp). A second reveal() is a new way to leak it.
TEST(TokenSecret, IsRevealedOnlyWhereTheAuthorizationHeaderIsWritten) {
    std::vector<std::string> reveals;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(std::string(SOURCE_DIR) + "/lib")) {
        const auto ext = entry.path().extension();
        if (ext != ".cpp" && ext != ".hpp") continue;
        if (entry.path().filename() == "secret.hpp") continue;  // where it is defined
        std::ifstream in(entry.path());
        std::string line;
        for (int n = 1; std::getline(in, line); ++n)
            if (line.find(".reveal()") != std::string::npos)
                reveals.push_back(entry.path().lexically_relative(SOURCE_DIR).string() + ":" + std::to_string(n) +
                                  ": " + line);
    }
    // The token's Authorization header and the proxy password's
    // Proxy-Authorization header (an authenticating proxy, issue 16).
    ASSERT_EQ(reveals.size(), 2u) << ::testing::PrintToString(reveals);
    for (const auto& r : reveals) {
        EXPECT_NE(r.find("lib/http/connection.cpp"), std::string::npos) << r;
        EXPECT_NE(r.find("authorization"), std::string::npos) << r;
    }
}

// api.proxy_password_file: the token file's rules, one line, never quoted.
TEST_F(Token, AProxyPasswordFileIsReadUnderTheTokenFilesRules) {
    using isync::config::load_proxy_password;
    const std::string canary = "proxy-canary 7f";  // a space is fine in a password
    auto ok = load_proxy_password(write("pw", canary + "\n"));
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->reveal(), canary);
    for (const auto& [text, mode, expected] : std::vector<std::tuple<std::string, fs::perms, std::string>>{
             {canary, fs::perms(0644), "chmod 600"},
             {canary, fs::perms(0640), "chmod 600"},
             {"\n", fs::perms(0600), "is empty"},
             {canary + "\nsecond line", fs::perms(0600), "more than one line"}}) {
        auto bad = load_proxy_password(write("pw", text, mode));
        ASSERT_FALSE(bad) << text;
        EXPECT_EQ(bad.error().code, isync::errc::config);
        EXPECT_NE(bad.error().message.find("proxy password file"), std::string::npos) << bad.error().message;
        EXPECT_NE(bad.error().message.find(expected), std::string::npos) << bad.error().message;
        EXPECT_EQ(bad.error().message.find("proxy-canary"), std::string::npos) << bad.error().message;
    }
    auto missing = load_proxy_password(dir_ / "nope");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("does not exist"), std::string::npos) << missing.error().message;
}

// The PostgreSQL password: database.password_file, then the systemd
// credential, then the Docker secret, then none (libpq looks itself); the
// token file's rules everywhere, and never the password in a message.
TEST_F(Token, TheDatabasePasswordComesFromTheFileThenTheCredentialThenTheDockerSecret) {
    using isync::config::load_database_password;
    const std::string canary = "db-canary-91x";
    const fs::path docker = dir_ / "docker/database_password";
    const auto getenv = [this](const char* name) -> const char* {
        const auto it = env_.find(name);
        return it == env_.end() ? nullptr : it->second.c_str();
    };
    const auto source = [&]() -> std::string {
        auto p = load_database_password(cfg_, getenv, docker);
        if (!p) return "error: " + p.error().message;
        if (!*p) return "none";
        EXPECT_EQ((*p)->password.reveal(), canary);
        return (*p)->source;
    };
    EXPECT_EQ(source(), "none");
    write("docker/database_password", canary + "\n", fs::perms(0400));
    EXPECT_EQ(source(), docker.string());
    write("creds/database-password", canary + "\n");
    env_["CREDENTIALS_DIRECTORY"] = (dir_ / "creds").string();
    EXPECT_EQ(source(), "$CREDENTIALS_DIRECTORY/database-password");
    cfg_.database.password_file = write("pw", canary + "\n").string();
    EXPECT_EQ(source(), "database.password_file " + cfg_.database.password_file);

    // A configured file that is wrong ends the search, saying what to fix.
    fs::permissions(cfg_.database.password_file, fs::perms(0644), fs::perm_options::replace);
    const auto open = source();
    EXPECT_NE(open.find("chmod 600"), std::string::npos) << open;
    EXPECT_NE(open.find("database password file"), std::string::npos) << open;
    EXPECT_EQ(open.find(canary), std::string::npos) << open;
    cfg_.database.password_file = (dir_ / "nope").string();
    EXPECT_NE(source().find("does not exist (database.password_file)"), std::string::npos) << source();
}
