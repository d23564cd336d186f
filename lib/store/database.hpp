#pragma once
// Opening the SQLite database: pragmas, embedded migrations, and the
// conversion of SQLite's exceptions into errors that name the file.

#include "util/error.hpp"

#include <SQLiteCpp/Database.h>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace isync::store {

struct open_options {
    std::string path{};
    std::chrono::milliseconds busy_timeout{5000};
    bool read_only = false;  // for `status`: never creates or migrates
    // Called when a migration that rewrites a table starts, and then every
    // `still_migrating_every` while it runs (`run` tells systemd to extend
    // its start timeout). Called on the opening thread, from inside SQLite.
    std::function<void(std::string_view what)> still_migrating{};
    std::chrono::milliseconds still_migrating_every{10000};
};

// Opens (creating if needed) and migrates the database. Fails with
// errc::database when the file cannot be opened, is not a database, or was
// made by a newer version of incident-sync.
result<std::unique_ptr<SQLite::Database>> open_database(const open_options& options);

// Stopping: makes every SQLite wait of this process end now. The busy
// handler stops waiting for another process's lock, the statement running on
// `db` (if any) is interrupted, and both fail as errc::cancelled through
// sqlite_error(), so a stop never waits out database.busy_timeout. The open
// transaction rolls back: nothing half-written is committed. Thread-safe.
void interrupt_waits(SQLite::Database& db) noexcept;
// Whether interrupt_waits() was called (and not reset_interrupt() since).
bool waits_interrupted() noexcept;
// For tests that open databases again in the same process after a stop.
void reset_interrupt() noexcept;

// What `run` needs of database.path before it opens it, checked without
// creating or changing anything (for `check-config` and the start of `run`):
// the directory exists and this user may create files in it (the lock file,
// the -wal and -shm files); an existing file is a database whose schema is
// not newer than this build's. Fails with errc::database saying what to do.
result<void> check_database_path(const std::string& path);

// The schema version this build knows (the highest embedded migration).
int latest_schema_version();

// Converts an exception thrown by SQLiteCpp while `doing` something to `path`
// into an error that says what happened and what to do.
error sqlite_error(const std::exception& e, std::string_view path, std::string_view doing);

}  // namespace isync::store
