# The include rule of one layer: every `#include "other/..."` in `dir` names a
# layer in `reach`, and every .cpp of `dir` is in `sources`. Stops with an error
# naming the file otherwise. Runs at configure time (cmake/Layers.cmake), at
# build time (this file in script mode) and in tests/packaging/layers_test.cmake.
cmake_policy(VERSION 3.25)  # IN_LIST, in script mode too

function(isync_check_layer_files name dir reach sources)
  get_filename_component(root ${dir}/../.. ABSOLUTE)
  set(LAYER_SOURCES ${sources})
  file(GLOB files ${dir}/*.hpp ${dir}/*.cpp)
  foreach(file IN LISTS files)
    file(STRINGS ${file} includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"[a-z_]+/")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([a-z_]+)/.*" "\\1" used "${line}")
      if(NOT used IN_LIST reach)
        file(RELATIVE_PATH shown ${root} ${file})
        message(FATAL_ERROR "${shown} includes \"${used}/...\", but layer ${name} does not depend on ${used} "
                            "(it reaches: ${reach}). Move the code down a layer, or declare the dependency in "
                            "lib/CMakeLists.txt if it does not make an upward arrow.")
      endif()
    endforeach()
  endforeach()

  # Every .cpp of the folder is listed (a forgotten file is a link error far away).
  file(GLOB present RELATIVE ${dir} ${dir}/*.cpp)
  foreach(source IN LISTS present)
    if(NOT source IN_LIST LAYER_SOURCES)
      message(FATAL_ERROR "lib/${name}/${source} is not in layer ${name}'s SOURCES (lib/CMakeLists.txt)")
    endif()
  endforeach()

endfunction()

set(ISYNC_LAYER_CHECK_SCRIPT ${CMAKE_CURRENT_LIST_FILE})

# Script mode: cmake -DNAME=... -DDIR=... -DREACH=a|b -DSOURCES=x.cpp|y.cpp -DSTAMP=file -P LayerCheck.cmake
if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  string(REPLACE "|" ";" reach "${REACH}")
  string(REPLACE "|" ";" sources "${SOURCES}")
  isync_check_layer_files(${NAME} ${DIR} "${reach}" "${sources}")
  if(STAMP)
    file(TOUCH ${STAMP})
  endif()
endif()
