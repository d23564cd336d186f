#pragma once
// One libpq connection and the few calls the PostgreSQL store makes on it:
// statements with text parameters (NULL as nullopt), results that free
// themselves, errors that name the database (never its password) and say
// what to do, and a cancel that any thread may send.

#include "config/secret.hpp"
#include "pgstore/libpq_loader.hpp"
#include "util/error.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace isync::pgstore {

// A statement's parameters, in text form; nullopt is SQL NULL.
using params = std::vector<std::optional<std::string>>;

// A result that clears itself. Rows and columns from 0.
class pg_result {
public:
    explicit pg_result(PGresult* r) : result_(r, pq().clear) {}
    int rows() const { return pq().ntuples(result_.get()); }
    int columns() const { return pq().nfields(result_.get()); }
    bool is_null(int row, int col) const { return pq().getisnull(result_.get(), row, col) != 0; }
    std::string_view text(int row, int col) const {
        return {pq().getvalue(result_.get(), row, col),
                static_cast<std::size_t>(pq().getlength(result_.get(), row, col))};
    }
    std::optional<std::string> optional_text(int row, int col) const {
        if (is_null(row, col)) return std::nullopt;
        return std::string(text(row, col));
    }
    std::int64_t int64(int row, int col) const;  // 0 for NULL
    std::optional<std::int64_t> optional_int64(int row, int col) const {
        if (is_null(row, col)) return std::nullopt;
        return int64(row, col);
    }

private:
    std::unique_ptr<PGresult, decltype(&::PQclear)> result_;
};

// Thrown by pg_connection's calls; pg_error() turns it into an `error`.
class pg_exception : public std::runtime_error {
public:
    pg_exception(std::string message, std::string sqlstate)
        : std::runtime_error(std::move(message)), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const { return sqlstate_; }

private:
    std::string sqlstate_;
};

struct connect_options {
    std::string url{};                         // a libpq URI or key=value string (database.url)
    std::optional<config::secret> password{};  // database.password_file; else libpq's own PGPASSFILE/PGPASSWORD
    std::string application_name = "incident-syncd";
    // How long a lease on a pair lasts unless renewed (database.lease_ttl).
    std::chrono::milliseconds lease_ttl{30000};
};

class pg_connection {
public:
    // Connects (TCP keepalives and a user timeout on, so that a connection a
    // dead peer left is noticed in about a minute, not after the kernel's
    // two hours). Fails with errc::database saying what to do.
    static result<std::unique_ptr<pg_connection>> connect(const connect_options& options);
    ~pg_connection();
    pg_connection(const pg_connection&) = delete;
    pg_connection& operator=(const pg_connection&) = delete;

    // Runs `sql` (one statement, or several without parameters); throws
    // pg_exception on failure. A statement with parameters is prepared on
    // its first use and reused after (parsed and planned once per connection).
    // Statements deferred before it go first, in the same round trip.
    pg_result exec(const std::string& sql);
    pg_result exec(const std::string& sql, const params& values);

    // A statement whose result nobody waits for: it is sent at once, in
    // pipeline mode, and its result is read with the next exec() (a
    // transaction's COMMIT at the latest). A transaction's writes then cost
    // one round trip together instead of one each, and the server runs them
    // while the caller prepares its next statements. `check`, when set, sees
    // its result once the round trip is over and may throw. The first
    // failure throws from that exec() (the statements after it did not run;
    // the caller's transaction then rolls back as after any failed
    // statement). Throws pg_exception when the statement cannot be sent.
    struct statement {
        std::string sql;
        params values;
        std::function<void(const pg_result&)> check = {};
        // Per parameter, 1 where its value is in binary format (a
        // pg_array::format::binary_text array); missing ones are text.
        std::vector<int> formats = {};
    };
    void defer(statement s);
    // Before a rollback: ends the pipeline, reading and dropping the results
    // of what was sent (their checks do not run; a failure among them does
    // not throw). The caller's ROLLBACK then undoes what they did.
    void discard_deferred() noexcept;
    // Whether the server has a transaction open on this connection.
    bool transaction_open() const;
    // How many times this connection has waited for the server, besides
    // preparing each statement once: the cost of a write on a distant
    // database, which tests count.
    std::int64_t round_trips() const { return round_trips_; }

    // Where it is connected, for messages: "user@host:port/dbname".
    const std::string& description() const { return description_; }
    // Whether the connection is still usable; reconnect() tries once, and
    // sets up the new session as set_session() did this one.
    bool broken() const { return pq().status(conn_) != CONNECTION_OK; }
    bool reconnect();
    // Runs a session setting (a SET statement) now and after every reconnect.
    void set_session(std::string statement);
    // Any thread: asks the server to cancel the statement running now.
    void cancel() noexcept;

private:
    explicit pg_connection(PGconn* conn);
    [[noreturn]] void fail(PGresult* r, std::string_view sql);
    // A statement sent in pipeline mode whose result is not read yet. A
    // statement prepared inside the pipeline is an entry of its own
    // (`prepares` names its SQL, forgotten again if the prepare failed).
    struct sent_statement {
        std::string sql;
        std::function<void(const pg_result&)> check;
        std::string prepares;
    };
    // Sends `s` in pipeline mode (entering it first), preparing it there on
    // its first use; `flush`: out to the server now.
    void send(statement s, bool flush);
    // Ends the pipeline: a sync, every sent statement's result read up to it.
    // Returns each statement's result (null for one that failed or did not
    // run) and the first failure, if any (the caller owns it).
    struct pipeline_results {
        std::vector<pg_result> results;
        PGresult* first_failure = nullptr;
        std::size_t failed_at = 0;
        bool complete = false;  // false: the connection broke before the sync
    };
    pipeline_results end_pipeline();

    PGconn* conn_;
    std::string description_;
    std::unordered_map<std::string, std::string> prepared_;  // SQL -> statement name, on this connection
    std::int64_t names_made_ = 0;                            // never reused: a failed prepare's name is not free
    std::vector<sent_statement> sent_;                       // in pipeline mode, results unread
    std::vector<std::string> session_settings_;              // set_session(), in order
    std::int64_t round_trips_ = 0;
    std::mutex cancel_mutex_;
    PGcancel* cancel_ = nullptr;
};

// An exception from the store's PostgreSQL calls as an `error` naming the
// database: errc::database_busy for a deadlock, a lock timeout or a
// serialization failure (try again), errc::cancelled for a statement cancelled
// by a stop, errc::database otherwise, with a hint where one helps.
error pg_error(const std::exception& e, std::string_view database, std::string_view doing, bool stopping);

}  // namespace isync::pgstore
