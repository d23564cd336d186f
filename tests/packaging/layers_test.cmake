# The layer rule (cmake/LayerCheck.cmake) refuses what it should and accepts
# what it should, on a small tree made for the test:
#   cmake -DCHECK=cmake/LayerCheck.cmake -DWORK=<empty dir> -P layers_test.cmake
cmake_policy(VERSION 3.25)
file(REMOVE_RECURSE ${WORK})
file(WRITE ${WORK}/lib/util/text.hpp "#pragma once\n")
file(WRITE ${WORK}/lib/util/text.cpp "#include \"util/text.hpp\"\n")
file(WRITE ${WORK}/lib/sync/engine.hpp "#include \"util/text.hpp\"\n#include <vector>\n")
file(WRITE ${WORK}/lib/sync/engine.cpp "#include \"sync/engine.hpp\"\n  #  include \"store/db.hpp\"\n")

# Runs the check as the build does; returns its exit code and output.
function(check name reach sources)
  string(REPLACE ";" "|" reach_arg "${reach}")
  string(REPLACE ";" "|" sources_arg "${sources}")
  execute_process(COMMAND ${CMAKE_COMMAND} -DNAME=${name} -DDIR=${WORK}/lib/${name} "-DREACH=${reach_arg}"
                          "-DSOURCES=${sources_arg}" -P ${CHECK}
                  RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE out)
  set(code ${code} PARENT_SCOPE)
  set(out "${out}" PARENT_SCOPE)
endfunction()

function(expect_pass name reach sources)
  check(${name} "${reach}" "${sources}")
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "layer ${name} (reach ${reach}) was refused:\n${out}")
  endif()
endfunction()

function(expect_refusal name reach sources words)
  check(${name} "${reach}" "${sources}")
  if(code EQUAL 0)
    message(FATAL_ERROR "layer ${name} (reach ${reach}) was accepted; expected a refusal saying: ${words}")
  endif()
  string(REGEX REPLACE "[ \t\r\n]+" " " flat "${out}")  # CMake wraps long messages
  string(FIND "${flat}" "${words}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "layer ${name} was refused, but the message does not say \"${words}\":\n${out}")
  endif()
endfunction()

expect_pass(util "util" "text.cpp")
# sync reaches store through its dependencies: an include of store/ is allowed.
expect_pass(sync "sync;store;util" "engine.cpp")
# An include of a layer it does not reach is refused, naming the file and the layer,
# wherever the directive sits and however it is spaced.
expect_refusal(sync "sync;util" "engine.cpp"
               "lib/sync/engine.cpp includes \"store/...\", but layer sync does not depend on store")
file(WRITE ${WORK}/lib/util/upward.hpp "#pragma once\n#include \"sync/engine.hpp\"\n")
expect_refusal(util "util" "text.cpp" "lib/util/upward.hpp includes \"sync/...\"")
file(REMOVE ${WORK}/lib/util/upward.hpp)
# A .cpp the layer does not list is refused too.
expect_refusal(util "util" "" "lib/util/text.cpp is not in layer util's SOURCES")
file(REMOVE_RECURSE ${WORK})
message(STATUS "layer rule: 2 accepted, 3 refused as expected")
