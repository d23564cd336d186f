#pragma once
// Loads and validates the YAML configuration file (the public contract
// documented in config/incident-sync.yaml).
//
// Every key has a default except `sync.pairs`. A null value (`key:` with
// nothing after it) means the empty string for string keys and is an error
// for every other key; a section with nothing under it uses its defaults.
// Relative paths (`api.token_file`, `api.ca_file`, `database.path`) are
// resolved against the directory of the config file, so the daemon does not
// depend on its working directory. Trailing slashes are removed from
// `api.base_url`.
//
// Errors: every problem found is reported, one per line, in document order
// (relations between keys, such as `retry.max_delay >= retry.base_delay`,
// are checked only once every key is valid on its own). Each line reads
//
//     <file>:<line>:<col>: <dotted.key>: <problem>; <what is allowed>
//
// with 1-based line and column, and list indexes in the key 0-based
// (`sync.pairs[1].tld` is the second pair). A YAML syntax error is reported
// alone, as `<file>:<line>:<col>: YAML syntax error: <parser's words>; check
// the indentation, ...`; a second YAML document in the file is an error too.
// An unreadable file gives `cannot read config file <path>: <reason>`.
// All of them use errc::config.
//
// Warnings: a value that is valid but probably a mistake (today, an
// `api.page_size` below 10) loads, and `config::warnings` holds one line for
// each in the same form, `<file>:<line>:<col>: <dotted.key>: <problem>;
// <advice>`. A file with errors reports only its errors.

#include "config/config.hpp"
#include "util/error.hpp"

#include <filesystem>
#include <string_view>

namespace isync::config {

// Reads `file` and validates it; sets `source` to `file`.
// Returns errc::config when the file cannot be read or is not valid.
result<config> load_config_file(const std::filesystem::path& file);

// Validates `yaml` as if it had been read from `shown_name`, which names the
// file in messages, anchors relative paths and becomes `source`.
// Returns errc::config when the text is not valid.
result<config> load_config_text(std::string_view yaml, const std::filesystem::path& shown_name);

}  // namespace isync::config
