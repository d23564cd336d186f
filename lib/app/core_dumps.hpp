#pragma once
// The API token and the database password live in this process's memory (in
// each request's Authorization header too). A core dump would carry them to
// wherever crashes are kept (systemd-coredump, apport, a core file in the
// working directory), readable by whoever reads those. So the daemon makes
// none: its core size limit goes to 0 (systemd-coredump and a core file
// honour it) and it marks itself not dumpable (which also stops another
// process of the same user from attaching to it or reading its memory).

namespace isync::app {

// Before any secret is read. Returns false when the kernel refused either
// step (the caller may warn; nothing depends on it).
bool keep_secrets_out_of_core_dumps();

}  // namespace isync::app
