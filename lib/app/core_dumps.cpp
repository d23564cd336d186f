#include "app/core_dumps.hpp"

#include <sys/prctl.h>
#include <sys/resource.h>

namespace isync::app {

bool keep_secrets_out_of_core_dumps() {
    const rlimit none{0, 0};
    const bool limited = ::setrlimit(RLIMIT_CORE, &none) == 0;
    const bool undumpable = ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
    return limited && undumpable;
}

}  // namespace isync::app
