include(${CMAKE_CURRENT_LIST_DIR}/LayerCheck.cmake)

# One static library per folder of lib/ (a "layer"), each with its sources
# listed and the layers it uses named:
#
#   isync_layer(store SOURCES database.cpp ... DEPENDS config model util LIBRARIES SQLiteCpp)
#
# makes target isync_store. At configure time it also reads every file of the
# layer and stops with an error when one includes "other/..." for a layer it
# does not reach through DEPENDS (directly or through one of them), or when a
# .cpp in the folder is missing from SOURCES: the build refuses an upward
# include instead of letting any layer reach any other.
#
# The same check runs again at build time whenever a file of the layer changes
# (cmake/LayerCheck.cmake, a stamp the layer's library depends on), so an edit
# that adds an upward include fails the next build, not only the next configure.
#
# Every layer compiles with the precompiled header of isync_pch (third-party
# headers only) and the project-wide settings of isync_build_settings.

function(isync_layer name)
  cmake_parse_arguments(PARSE_ARGV 1 LAYER "" "" "SOURCES;DEPENDS;LIBRARIES;EXTRA_SOURCES")
  set(dir ${PROJECT_SOURCE_DIR}/lib/${name})
  set(target isync_${name})

  # What this layer may include: itself and everything its dependencies reach.
  set(reach ${name})
  foreach(dep IN LISTS LAYER_DEPENDS)
    get_property(dep_reach GLOBAL PROPERTY ISYNC_LAYER_REACH_${dep})
    if(NOT dep_reach)
      message(FATAL_ERROR "layer ${name} depends on ${dep}, which is not declared before it (lib/CMakeLists.txt)")
    endif()
    list(APPEND reach ${dep_reach})
  endforeach()
  list(REMOVE_DUPLICATES reach)
  set_property(GLOBAL PROPERTY ISYNC_LAYER_REACH_${name} ${reach})

  isync_check_layer_files(${name} ${dir} "${reach}" "${LAYER_SOURCES}")
  set(sources_relative ${LAYER_SOURCES})

  list(TRANSFORM LAYER_SOURCES PREPEND ${dir}/)
  set(dep_targets ${LAYER_DEPENDS})
  list(TRANSFORM dep_targets PREPEND isync_)
  if(LAYER_SOURCES OR LAYER_EXTRA_SOURCES)
    add_library(${target} STATIC ${LAYER_SOURCES} ${LAYER_EXTRA_SOURCES})
    target_link_libraries(${target} PUBLIC isync_build_settings ${dep_targets} ${LAYER_LIBRARIES})
    target_precompile_headers(${target} REUSE_FROM isync_pch)
    file(GLOB layer_files CONFIGURE_DEPENDS ${dir}/*.hpp ${dir}/*.cpp)
    list(JOIN reach "|" reach_arg)
    list(JOIN sources_relative "|" sources_arg)
    set(stamp ${CMAKE_CURRENT_BINARY_DIR}/layer_${name}.checked)
    add_custom_command(
      OUTPUT ${stamp}
      COMMAND ${CMAKE_COMMAND} -DNAME=${name} -DDIR=${dir} "-DREACH=${reach_arg}" "-DSOURCES=${sources_arg}"
              -DSTAMP=${stamp} -P ${ISYNC_LAYER_CHECK_SCRIPT}
      DEPENDS ${layer_files} ${ISYNC_LAYER_CHECK_SCRIPT}
      COMMENT "Checking the includes of layer ${name}"
      VERBATIM)
    add_custom_target(${target}_layer_check DEPENDS ${stamp})
    add_dependencies(${target} ${target}_layer_check)
  else()
    add_library(${target} INTERFACE)
    target_link_libraries(${target} INTERFACE isync_build_settings ${dep_targets} ${LAYER_LIBRARIES})
  endif()
endfunction()
