// incident-syncd: wiring only. Behaviour lives in lib/ where tests reach it.
#include "app/arguments.hpp"
#include "app/commands.hpp"

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    const std::vector<std::string> argv_copy(argv, argv + argc);
    auto args = isync::app::parse_arguments(argv_copy);
    if (!args) {
        std::fprintf(stderr, "incident-syncd: %s\n", args.error().message.c_str());
        return isync::app::exit_usage;
    }
    return isync::app::run_command(*args);
}
