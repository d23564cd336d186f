# Writes incident-syncd.1 (roff) from the daemon's own `--help` and
# `--version`, so the manual page never says something the binary does not.
# Run as a script:  cmake -DDAEMON=path -DTEMPLATE=file -DOUTPUT=file -P ManPage.cmake
# The help's "Usage:", "Options:" and "Exit codes:" parts become SYNOPSIS,
# OPTIONS and EXIT STATUS, kept as preformatted text; TEMPLATE adds the rest.
foreach(var DAEMON TEMPLATE OUTPUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "ManPage.cmake: -D${var}=... is required")
  endif()
endforeach()
execute_process(COMMAND "${DAEMON}" --help OUTPUT_VARIABLE help RESULT_VARIABLE help_rc)
execute_process(COMMAND "${DAEMON}" --version OUTPUT_VARIABLE version RESULT_VARIABLE version_rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT help_rc EQUAL 0 OR NOT version_rc EQUAL 0)
  message(FATAL_ERROR "ManPage.cmake: ${DAEMON} --help/--version failed")
endif()

# Roff escapes: a backslash is \e; a line that starts with . or ' would be a request.
function(roff_verbatim text out)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  string(REGEX REPLACE "\n+$" "" text "${text}")
  set(${out} ".nf\n${text}\n.fi" PARENT_SCOPE)
endfunction()

# The first line is "incident-syncd: <what it does>."
string(REGEX MATCH "^[^\n]*" first_line "${help}")
string(REGEX REPLACE "^incident-syncd: *" "" summary "${first_line}")
string(REGEX REPLACE "\\.$" "" summary "${summary}")
foreach(part usage options exit)
  set(${part} "")
endforeach()
string(FIND "${help}" "Usage:\n" at_usage)
string(FIND "${help}" "Options:\n" at_options)
string(FIND "${help}" "Exit codes:" at_exit)
if(at_usage LESS 0 OR at_options LESS 0 OR at_exit LESS 0)
  message(FATAL_ERROR "ManPage.cmake: --help lacks Usage:, Options: or Exit codes:")
endif()
math(EXPR usage_begin "${at_usage} + 7")
math(EXPR usage_length "${at_options} - ${usage_begin}")
string(SUBSTRING "${help}" ${usage_begin} ${usage_length} usage)
math(EXPR options_begin "${at_options} + 9")
math(EXPR options_length "${at_exit} - ${options_begin}")
string(SUBSTRING "${help}" ${options_begin} ${options_length} options)
math(EXPR exit_begin "${at_exit} + 11")
string(SUBSTRING "${help}" ${exit_begin} -1 exit)
string(STRIP "${exit}" exit)
roff_verbatim("${usage}" usage)
roff_verbatim("${options}" options)
string(REPLACE "\\" "\\e" exit "${exit}")
string(REPLACE "-" "\\-" summary_roff "${summary}")

file(READ "${TEMPLATE}" page)
string(REPLACE "@VERSION@" "${version}" page "${page}")
string(REPLACE "@SUMMARY@" "${summary_roff}" page "${page}")
string(REPLACE "@SYNOPSIS@" "${usage}" page "${page}")
string(REPLACE "@OPTIONS@" "${options}" page "${page}")
string(REPLACE "@EXIT_STATUS@" "${exit}" page "${page}")
file(WRITE "${OUTPUT}" "${page}")
