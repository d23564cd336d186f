#pragma once
// libpq, loaded when the first PostgreSQL connection is made (dlopen), not
// linked: linking it mapped 20 more libraries (Kerberos, LDAP, GnuTLS, ...)
// into every daemon at start-up, 4 MiB of resident memory that a daemon on
// SQLite never uses. Only libpq-fe.h's declarations are used at build time.

#include "util/error.hpp"

#include <libpq-fe.h>

namespace isync::pgstore {

// The libpq functions the store calls, by the names libpq gives them.
struct libpq_api {
    decltype(&::PQconnectdbParams) connectdb_params;
    decltype(&::PQstatus) status;
    decltype(&::PQerrorMessage) error_message;
    decltype(&::PQfinish) finish;
    decltype(&::PQreset) reset;
    decltype(&::PQgetCancel) get_cancel;
    decltype(&::PQfreeCancel) free_cancel;
    decltype(&::PQcancel) cancel;
    decltype(&::PQexec) exec;
    decltype(&::PQprepare) prepare;
    decltype(&::PQexecPrepared) exec_prepared;
    decltype(&::PQresultStatus) result_status;
    decltype(&::PQresultErrorMessage) result_error_message;
    decltype(&::PQresultErrorField) result_error_field;
    decltype(&::PQclear) clear;
    decltype(&::PQntuples) ntuples;
    decltype(&::PQnfields) nfields;
    decltype(&::PQgetisnull) getisnull;
    decltype(&::PQgetvalue) getvalue;
    decltype(&::PQgetlength) getlength;
    decltype(&::PQconninfoParse) conninfo_parse;
    decltype(&::PQconninfoFree) conninfo_free;
    decltype(&::PQfreemem) freemem;
    decltype(&::PQhost) host;
    decltype(&::PQuser) user;
    decltype(&::PQport) port;
    decltype(&::PQdb) db;
    decltype(&::PQenterPipelineMode) enter_pipeline_mode;
    decltype(&::PQexitPipelineMode) exit_pipeline_mode;
    decltype(&::PQpipelineSync) pipeline_sync;
    decltype(&::PQsendQueryPrepared) send_query_prepared;
    decltype(&::PQsendQueryParams) send_query_params;
    decltype(&::PQsendPrepare) send_prepare;
    decltype(&::PQflush) flush;
    decltype(&::PQtransactionStatus) transaction_status;
    decltype(&::PQsetNoticeProcessor) set_notice_processor;
    decltype(&::PQgetResult) get_result;
};

// Loads libpq.so.5 once (thread-safe); errc::database saying what to install
// when it is missing or lacks a function.
result<const libpq_api*> load_libpq();

// After a successful load_libpq() (every pg_connection exists after one).
const libpq_api& pq();

}  // namespace isync::pgstore
