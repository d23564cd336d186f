#pragma once
// The commands behind the command line. Each returns the process exit code.

#include "app/arguments.hpp"

namespace isync::app {

// Dispatches `args.cmd`; prints errors to stderr with what to do.
int run_command(const arguments& args);

}  // namespace isync::app
