// incident-syncd: wiring only. Behaviour lives in lib/ where tests reach it.
#include "app/arguments.hpp"
#include "app/commands.hpp"
#include "app/core_dumps.hpp"

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    // First: no secret is in memory yet. A refusal changes nothing else.
    if (!isync::app::keep_secrets_out_of_core_dumps())
        std::fprintf(stderr,
                     "incident-syncd: warning: could not turn core dumps off; a crash dump could hold the token\n");
    const std::vector<std::string> argv_copy(argv, argv + argc);
    auto args = isync::app::parse_arguments(argv_copy);
    if (!args) {
        std::fprintf(stderr, "incident-syncd: %s\n", args.error().message.c_str());
        return isync::app::exit_usage;
    }
    return isync::app::run_command(*args);
}
