#include "store/sync_state.hpp"

#include "store/database.hpp"
#include "util/timestamp.hpp"

#include <SQLiteCpp/Statement.h>

namespace isync::store {
namespace {

std::optional<std::int64_t> column_ms(SQLite::Statement& st, int i) {
    if (st.getColumn(i).isNull()) return std::nullopt;
    return util::parse_iso8601_ms(st.getColumn(i).getString());
}

}  // namespace

result<std::vector<stored_pair_state>> read_sync_states(SQLite::Database& db, std::string_view path,
                                                        bool count_incidents) {
    try {
        std::vector<stored_pair_state> out;
        SQLite::Statement state(db,
                                "SELECT app_id, tld, watermark_ms, last_success_at, last_error_at, last_error, "
                                "auth_failing FROM sync_state ORDER BY app_id, tld");
        while (state.executeStep()) {
            stored_pair_state s;
            s.pair = {state.getColumn(0).getString(), state.getColumn(1).getString()};
            if (!state.getColumn(2).isNull()) s.watermark_ms = state.getColumn(2).getInt64();
            s.last_success_ms = column_ms(state, 3);
            s.last_error_ms = column_ms(state, 4);
            if (!state.getColumn(5).isNull()) s.last_error = state.getColumn(5).getString();
            s.auth_failing = state.getColumn(6).getInt() != 0;
            out.push_back(std::move(s));
        }
        if (count_incidents) {
            SQLite::Statement count(db, "SELECT COUNT(*) FROM incidents WHERE app_id = ? AND host_domain = ?");
            for (auto& s : out) {
                count.bind(1, s.pair.app_id);
                count.bind(2, s.pair.tld);
                if (count.executeStep()) s.incidents = count.getColumn(0).getInt64();
                count.reset();
            }
        }
        return out;
    } catch (const std::exception& e) {
        return sqlite_error(e, path, "reading the sync state");
    }
}

}  // namespace isync::store
