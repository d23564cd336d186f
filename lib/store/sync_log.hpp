#pragma once
// The sync's record of itself: each pair's watermark and last outcome
// (`sync_state`) and a `sync_runs` row for each window slice, written in the
// transaction of the slice's last page or of its failure. Reading the state
// back for `status` and the engine's start: sync_state.hpp.

#include "config/config.hpp"
#include "store/slice_report.hpp"
#include "store/statements.hpp"

#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <optional>
#include <string>

namespace isync::store {

class sync_log {
public:
    // Prepares its statements through `statements`.
    explicit sync_log(statement_registry& statements);

    // The slice's last page is written: moves the pair's watermark to
    // report.to_ms (never backwards) and adds an `ok` run whose totals are
    // report.counts plus `page`. Throws like any statement.
    void finish_slice(const slice_report& report, const upsert_counts& page, const std::string& now_text);

    // The slice failed: the pair's last error (and whether it was refused
    // authentication) and a `failed` run; the watermark stays. Throws like any statement.
    void record_failure(const slice_report& report, const std::string& error_text, const std::string& now_text,
                        bool auth_failure);

    // The pair's watermark (epoch ms), nullopt before its first finished
    // slice. Throws like any statement.
    std::optional<std::int64_t> watermark(const config::pair& pair);

private:
    // One sync_runs row: `ok` when `error_text` is null, else `failed` with it.
    void write_run(const slice_report& report, std::int64_t pages, const upsert_counts& totals,
                   const std::string& now_text, const std::string* error_text);

    SQLite::Statement& upsert_state_success_;
    SQLite::Statement& upsert_state_failure_;
    SQLite::Statement& insert_run_;
    SQLite::Statement& select_watermark_;
};

}  // namespace isync::store
