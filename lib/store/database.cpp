#include "store/database.hpp"

#include "store/migrations.hpp"
#include "util/hash.hpp"

#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

namespace isync::store {
namespace {

std::string hint_for(int code) {
    switch (code & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return "another process holds a write lock; the daemon retries later";
        case SQLITE_FULL:
            return "the disk (or the database's size limit) is full; free space and the sync resumes";
        case SQLITE_READONLY:
            return "the file or its directory is read-only for this user; check ownership and permissions";
        case SQLITE_CANTOPEN:
            return "the file or its directory cannot be opened; check the path and permissions";
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            return "the file is damaged or not an SQLite database; restore it from a backup or move it away";
        case SQLITE_IOERR:
            return "the operating system reported an I/O error; check the disk";
        default:
            return "";
    }
}

std::atomic<bool> stop_waits{false};

// SQLite's own busy handler sleeps through the whole busy_timeout whatever
// happens; this one sleeps the same steps (1 ms growing to 100 ms) but looks
// at stop_waits before each, so SIGTERM is not held up by another process's
// lock for up to database.busy_timeout. The timeout travels in the pointer.
int interruptible_busy_handler(void* timeout_ms_as_pointer, int count) {
    static constexpr std::array<int, 12> steps{1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
    const auto timeout_ms = static_cast<long>(reinterpret_cast<std::intptr_t>(timeout_ms_as_pointer));
    if (stop_waits.load(std::memory_order_relaxed)) return 0;
    long slept = 0;
    for (int i = 0; i < count; ++i)
        slept += i < static_cast<int>(steps.size()) ? steps[static_cast<std::size_t>(i)] : 100;
    if (slept >= timeout_ms) return 0;
    const long step = count < static_cast<int>(steps.size()) ? steps[static_cast<std::size_t>(count)] : 100;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(step, timeout_ms - slept)));
    return stop_waits.load(std::memory_order_relaxed) ? 0 : 1;
}

void apply_pragmas(SQLite::Database& db, const open_options& options) {
    sqlite3_busy_handler(db.getHandle(), &interruptible_busy_handler,
                         reinterpret_cast<void*>(static_cast<std::intptr_t>(options.busy_timeout.count())));
    if (!options.read_only) {
        // 16 KiB pages for a new database (an existing one keeps its size):
        // a fresh 100k backfill went from 39k to 48k incidents/s in the store
        // alone (fewer B-tree pages, splits and write(2) calls for the same
        // bytes), and lookups by id from 378k to 570k/s. Only takes effect
        // before the first table exists, so it comes before everything else.
        db.exec("PRAGMA page_size=16384");
        // WAL lets readers (sqlite3, Datasette) query while the daemon writes.
        db.exec("PRAGMA journal_mode=WAL");
        // Persistent WAL: the -wal and -shm files stay when the daemon closes
        // the database, however it stops (a clean pass, a failed one, a
        // kill). A reader without write access to the directory (an analyst
        // in the group) can only open a WAL database whose -wal and -shm
        // exist; without this they were deleted by a clean close, so
        // `sqlite3 -readonly` worked or failed depending on how the daemon
        // last stopped. They are made with the database file's mode.
        int persist = 1;
        sqlite3_file_control(db.getHandle(), "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
        db.exec("PRAGMA synchronous=NORMAL");
        // Bound the WAL file once readers let go of old snapshots.
        db.exec("PRAGMA journal_size_limit=67108864");
        // Checkpoint rarely during a backfill (every 64 MiB of log): each
        // checkpoint rewrites the hot index pages again. The engine adds a
        // passive checkpoint whenever it goes idle (measured: 12.4k -> 16.4k
        // incidents/s on a fresh 100k load). The pragma counts pages.
        const int page_bytes = db.execAndGet("PRAGMA page_size").getInt();
        db.exec(fmt::format("PRAGMA wal_autocheckpoint={}", (64 << 20) / std::max(page_bytes, 512)));
    }
    db.exec("PRAGMA foreign_keys=ON");
    // 4 MiB: 4, 8 and 16 MiB ran a 100k backfill at the same speed, and 8 MiB
    // took a 1M backfill past 32 MiB of peak RSS (32.1 MiB; 28.4 MiB with 4).
    db.exec("PRAGMA cache_size=-4096");
}

// isync_content_hash(text): util::hash_bytes of the text's bytes, for the
// migration that recomputes incidents.content_hash when its function changes.
void content_hash_function(sqlite3_context* ctx, int, sqlite3_value** argv) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
    if (!text) return sqlite3_result_null(ctx);
    const auto size = static_cast<std::size_t>(sqlite3_value_bytes(argv[0]));
    sqlite3_result_int64(ctx, util::hash_bytes(std::string_view(text, size)));
}

// Calls options.still_migrating every still_migrating_every while a
// statement runs: SQLite's progress handler, checked every 100,000 VM steps
// (about a millisecond). Removed when it goes out of scope.
class migration_progress {
public:
    migration_progress(SQLite::Database& db, const open_options& options, std::string what)
        : db_(db), options_(options), what_(std::move(what)), last_(std::chrono::steady_clock::now()) {
        if (!options_.still_migrating) return;
        options_.still_migrating(what_);
        sqlite3_progress_handler(db_.getHandle(), 100000, &migration_progress::tick, this);
    }
    ~migration_progress() {
        if (options_.still_migrating) sqlite3_progress_handler(db_.getHandle(), 0, nullptr, nullptr);
    }
    migration_progress(const migration_progress&) = delete;
    migration_progress& operator=(const migration_progress&) = delete;

private:
    // Called by SQLite (C): nothing may be thrown through it.
    static int tick(void* self_pointer) noexcept {
        auto& self = *static_cast<migration_progress*>(self_pointer);
        const auto now = std::chrono::steady_clock::now();
        if (now - self.last_ >= self.options_.still_migrating_every) {
            self.last_ = now;
            try {
                self.options_.still_migrating(self.what_);
            } catch (...) {
                // a report that failed is no reason to stop the upgrade
            }
        }
        return 0;  // go on
    }

    SQLite::Database& db_;
    const open_options& options_;
    std::string what_;
    std::chrono::steady_clock::time_point last_;
};

void migrate(SQLite::Database& db, const open_options& options) {
    const std::string& path = options.path;
    sqlite3_create_function(db.getHandle(), "isync_content_hash", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                            &content_hash_function, nullptr, nullptr);
    const int current = db.execAndGet("PRAGMA user_version").getInt();
    const int latest = latest_schema_version();
    if (current > latest) {
        throw error_exception(make_error(
            errc::database,
            fmt::format("database {} has schema version {}, but this incident-syncd knows only up to {}; "
                        "it was written by a newer version: upgrade incident-syncd (downgrading is never done)",
                        path, current, latest)));
    }
    if (current == latest) return;
    // Foreign keys off while migrating: a migration that rebuilds a table
    // (SQLite cannot drop a constraint; 007 rebuilds incidents) drops the old
    // one, and with them on that would delete every child row by cascade. The
    // pragma does nothing inside a transaction, so it is set out here.
    const bool foreign_keys = db.execAndGet("PRAGMA foreign_keys").getInt() != 0;
    db.exec("PRAGMA foreign_keys=OFF");
    struct restore_foreign_keys {
        SQLite::Database& db;
        bool on;
        ~restore_foreign_keys() {
            if (on) sqlite3_exec(db.getHandle(), "PRAGMA foreign_keys=ON", nullptr, nullptr, nullptr);
        }
    } restore{db, foreign_keys};
    for (const migration& m : embedded_migrations()) {
        if (m.version <= current) continue;
        // A new database has no rows to rewrite: only an upgrade says so.
        const std::string_view rewrites = current > 0 ? rewrite_note(m) : std::string_view();
        if (!rewrites.empty()) spdlog::info("database {}: upgrading to schema {} {}", path, m.version, rewrites);
        const auto started = std::chrono::steady_clock::now();
        std::optional<migration_progress> progress;
        if (!rewrites.empty())
            progress.emplace(db, options, fmt::format("upgrading the database to schema {}: {}", m.version, rewrites));
        // BEGIN IMMEDIATE: two processes starting at once must not both migrate.
        SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
        // Re-check under the write lock: another process may have migrated meanwhile.
        if (db.execAndGet("PRAGMA user_version").getInt() >= m.version) continue;
        db.exec(std::string(m.sql));
        db.exec(fmt::format("PRAGMA user_version={}", m.version));
        tx.commit();
        if (!rewrites.empty())
            spdlog::info("database {}: schema {} in place ({:.1f} s)", path, m.version,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
}

// A WAL database whose -wal or -shm file is gone, in a directory this user
// cannot write: SQLite then fails with "unable to open" or "readonly".
bool reader_lacks_wal_files(const std::string& path) {
    const bool missing = ::access((path + "-wal").c_str(), F_OK) != 0 || ::access((path + "-shm").c_str(), F_OK) != 0;
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    return missing && ::access(dir.c_str(), W_OK) != 0;
}

}  // namespace

result<void> check_database_path(const std::string& path) {
    if (path == ":memory:") return {};
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path file(path);
    const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
    const auto dir_status = fs::status(dir, ec);
    if (!fs::exists(dir_status))
        return make_error(errc::database,
                          fmt::format("database.path {}: the directory {} does not exist; create it, owned by the "
                                      "daemon's user (systemd's StateDirectory= does this), or fix database.path",
                                      path, dir.string()));
    if (!fs::is_directory(dir_status))
        return make_error(errc::database, fmt::format("database.path {}: {} is not a directory", path, dir.string()));
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        return make_error(errc::database,
                          fmt::format("database.path {}: this user (uid {}) cannot create files in {} (the lock, "
                                      "-wal and -shm files live there); give the daemon's user write access to it",
                                      path, ::geteuid(), dir.string()));
    const auto file_status = fs::status(file, ec);
    if (!fs::exists(file_status)) return {};  // `run` creates it
    if (!fs::is_regular_file(file_status))
        return make_error(errc::database, fmt::format("database.path {} is not a regular file", path));
    try {
        SQLite::Database db(path, SQLite::OPEN_READONLY);
        const int version = db.execAndGet("PRAGMA user_version").getInt();
        if (version > latest_schema_version())
            return make_error(errc::database,
                              fmt::format("database {} has schema version {}, but this incident-syncd knows only up "
                                          "to {}; it was written by a newer version: upgrade incident-syncd "
                                          "(downgrading is never done)",
                                          path, version, latest_schema_version()));
    } catch (const std::exception& e) {
        return sqlite_error(e, path, "checking");
    }
    return {};
}

void interrupt_waits(SQLite::Database& db) noexcept {
    stop_waits.store(true);
    sqlite3_interrupt(db.getHandle());
}

bool waits_interrupted() noexcept { return stop_waits.load(); }

void reset_interrupt() noexcept { stop_waits.store(false); }

int latest_schema_version() {
    const auto& all = embedded_migrations();
    return all.empty() ? 0 : all.back().version;
}

error sqlite_error(const std::exception& e, std::string_view path, std::string_view doing) {
    if (const auto* ee = dynamic_cast<const error_exception*>(&e)) return ee->get();
    int code = 0;
    if (const auto* se = dynamic_cast<const SQLite::Exception*>(&e)) code = se->getErrorCode();
    const bool busy = (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED;
    // A wait or statement cut short by a stop (interrupt_waits) is a cancellation.
    if ((code & 0xff) == SQLITE_INTERRUPT || (busy && stop_waits.load()))
        return make_error(errc::cancelled, fmt::format("database {}: {} stopped: the daemon is stopping", path, doing));
    std::string hint = hint_for(code);
    return make_error(
        busy ? errc::database_busy : errc::database,
        fmt::format("database {}: {} failed: {}{}{}", path, doing, e.what(), hint.empty() ? "" : "; ", hint));
}

result<std::unique_ptr<SQLite::Database>> open_database(const open_options& options) {
    // SQLite's global memory statistics take a mutex on every allocation;
    // nothing here reads them. Only possible before SQLite initialises.
    static std::once_flag configure_once;
    std::call_once(configure_once, [] {
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        // CREATE INDEX sorts at least 250 pages in memory (4 MiB of 16 KiB
        // pages) before it spills to a file: 64 pages keep the build of a
        // deferred index within the daemon's usual peak (+3 MiB otherwise).
        sqlite3_config(SQLITE_CONFIG_PMASZ, 64);
        // Not SQLITE_CONFIG_STMTJRNL_SPILL: keeping the statement journals of
        // multi-row INSERTs in memory up to 256 KiB saved their 1.3 GB of temp
        // file writes per 100k backfill, but SQLite 3.40.1 then failed a 1M
        // backfill with SQLITE_FULL ("database or disk is full", 50 GB free)
        // in 3 runs of 7, in INSERT OR REPLACE INTO action_args; 0 of 8 without.
        // The child rows' INSERTs now need no statement journal at all (see
        // incident_writer), which saves those writes without the risk.
    });
    // A reader (status, export) never creates the file: say how one is made.
    if (std::error_code ec;
        options.read_only && options.path != ":memory:" && !std::filesystem::exists(options.path, ec))
        return make_error(errc::database, fmt::format("no database yet at {}: run `incident-syncd once` (or start the "
                                                      "service) to make it",
                                                      options.path));
    try {
        // NOMUTEX: a connection is used by one thread at a time (the engine
        // hands it to its writer thread), so SQLite need not lock each call.
        const int flags = SQLite::OPEN_NOMUTEX |
                          (options.read_only ? SQLite::OPEN_READONLY : (SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE));
        auto db = std::make_unique<SQLite::Database>(options.path, flags);
        apply_pragmas(*db, options);
        if (options.read_only) {
            const int version = db->execAndGet("PRAGMA user_version").getInt();
            if (version > latest_schema_version())
                return make_error(errc::database,
                                  fmt::format("database {} has schema version {}, newer than this incident-syncd "
                                              "knows ({}); upgrade incident-syncd",
                                              options.path, version, latest_schema_version()));
            if (version == 0)
                return make_error(errc::database, fmt::format("database {} has no incident-sync schema yet; run "
                                                              "`incident-syncd once` or `run` first",
                                                              options.path));
        } else {
            // SQLite silently falls back to read-only when the file is not
            // writable; say so at start-up rather than at the first commit.
            if (sqlite3_db_readonly(db->getHandle(), "main") == 1)
                return make_error(errc::database,
                                  fmt::format("database {} is read-only for this user (uid {}): the daemon must be "
                                              "able to write it and its directory; check ownership and permissions "
                                              "(systemd: StateDirectory=; Docker: the /data volume)",
                                              options.path, ::geteuid()));
            migrate(*db, options);
        }
        return db;
    } catch (const std::exception& e) {
        if (options.read_only && reader_lacks_wal_files(options.path))
            return make_error(errc::database,
                              fmt::format("database {} cannot be opened read-only: its {}-wal and {}-shm files are "
                                          "missing and this user cannot create them; let the daemon (which keeps "
                                          "them) open it once, or open it once as its owner",
                                          options.path, options.path, options.path));
        return sqlite_error(e, options.path, options.read_only ? "opening read-only" : "opening and migrating");
    }
}

}  // namespace isync::store
