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
    std::string url;                         // a libpq URI or key=value string (database.url)
    std::optional<config::secret> password;  // database.password_file; else libpq's own PGPASSFILE/PGPASSWORD
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

    // A statement whose result nobody waits for: it is queued and sent, in
    // pipeline mode, with the next exec() (a transaction's COMMIT at the
    // latest), so that a transaction's writes cost one round trip together
    // instead of one each. `check`, when set, sees its result once the round
    // trip is over and may throw. The first failure throws from that exec()
    // (the statements after it did not run; the caller's transaction then
    // rolls back as after any failed statement).
    struct statement {
        std::string sql;
        params values;
        std::function<void(const pg_result&)> check = {};
    };
    void defer(statement s) { deferred_.push_back(std::move(s)); }
    // Drops what is queued, unsent (a rollback: it must never run).
    void discard_deferred() noexcept { deferred_.clear(); }
    // Whether the server has a transaction open on this connection (a
    // deferred BEGIN that was never sent does not count).
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
    // Sends `batch` in pipeline mode, reads every result, runs the checks;
    // returns the last statement's result.
    pg_result run_pipeline(std::vector<statement> batch);
    // Moves the queue into a batch, with `last` at its end.
    pg_result exec_after_deferred(statement last);
    // The prepared statement's name for `sql`, preparing it on first use.
    const std::string& prepared_name(const std::string& sql, int n_params);

    PGconn* conn_;
    std::string description_;
    std::unordered_map<std::string, std::string> prepared_;  // SQL -> statement name, on this connection
    std::vector<statement> deferred_;
    std::vector<std::string> session_settings_;  // set_session(), in order
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
