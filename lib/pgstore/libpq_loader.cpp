#include "pgstore/libpq_loader.hpp"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace isync::pgstore {
namespace {

libpq_api api{};
std::string load_error;

template <class F>
bool resolve(void* lib, const char* name, F& out) {
    out = reinterpret_cast<F>(::dlsym(lib, name));
    if (!out && load_error.empty()) {
        load_error = "libpq.so.5 lacks ";
        load_error += name;
    }
    return out != nullptr;
}

void load_once() {
    // Never closed: the functions stay valid for the process's life.
    void* lib = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char* why = ::dlerror();
        load_error = why ? why : "libpq.so.5 not found";
        return;
    }
    bool ok = true;
    ok &= resolve(lib, "PQconnectdbParams", api.connectdb_params);
    ok &= resolve(lib, "PQstatus", api.status);
    ok &= resolve(lib, "PQerrorMessage", api.error_message);
    ok &= resolve(lib, "PQfinish", api.finish);
    ok &= resolve(lib, "PQreset", api.reset);
    ok &= resolve(lib, "PQgetCancel", api.get_cancel);
    ok &= resolve(lib, "PQfreeCancel", api.free_cancel);
    ok &= resolve(lib, "PQcancel", api.cancel);
    ok &= resolve(lib, "PQexec", api.exec);
    ok &= resolve(lib, "PQprepare", api.prepare);
    ok &= resolve(lib, "PQexecPrepared", api.exec_prepared);
    ok &= resolve(lib, "PQresultStatus", api.result_status);
    ok &= resolve(lib, "PQresultErrorMessage", api.result_error_message);
    ok &= resolve(lib, "PQresultErrorField", api.result_error_field);
    ok &= resolve(lib, "PQclear", api.clear);
    ok &= resolve(lib, "PQntuples", api.ntuples);
    ok &= resolve(lib, "PQnfields", api.nfields);
    ok &= resolve(lib, "PQgetisnull", api.getisnull);
    ok &= resolve(lib, "PQgetvalue", api.getvalue);
    ok &= resolve(lib, "PQgetlength", api.getlength);
    ok &= resolve(lib, "PQconninfoParse", api.conninfo_parse);
    ok &= resolve(lib, "PQconninfoFree", api.conninfo_free);
    ok &= resolve(lib, "PQfreemem", api.freemem);
    ok &= resolve(lib, "PQhost", api.host);
    ok &= resolve(lib, "PQuser", api.user);
    ok &= resolve(lib, "PQport", api.port);
    ok &= resolve(lib, "PQdb", api.db);
    ok &= resolve(lib, "PQenterPipelineMode", api.enter_pipeline_mode);
    ok &= resolve(lib, "PQexitPipelineMode", api.exit_pipeline_mode);
    ok &= resolve(lib, "PQpipelineSync", api.pipeline_sync);
    ok &= resolve(lib, "PQsendQueryPrepared", api.send_query_prepared);
    ok &= resolve(lib, "PQsendQueryParams", api.send_query_params);
    ok &= resolve(lib, "PQsendPrepare", api.send_prepare);
    ok &= resolve(lib, "PQflush", api.flush);
    ok &= resolve(lib, "PQtransactionStatus", api.transaction_status);
    ok &= resolve(lib, "PQsetNoticeProcessor", api.set_notice_processor);
    ok &= resolve(lib, "PQgetResult", api.get_result);
    if (ok) load_error.clear();
}

}  // namespace

result<const libpq_api*> load_libpq() {
    static std::once_flag once;
    std::call_once(once, load_once);
    if (!load_error.empty())
        return make_error(errc::database,
                          "database.url needs PostgreSQL's client library, which could not be loaded (" + load_error +
                              "); install it: apt-get install libpq5");
    return &api;
}

const libpq_api& pq() { return api; }

}  // namespace isync::pgstore
