# Embeds schema/<backend>/NNN_name.sql into a generated C++ source so the
# binary carries its own migrations: `function` names the generated accessor
# (declared in store/migrations.hpp). Re-runs when a file is added
# (CONFIGURE_DEPENDS) or edited.
function(embed_schema out_var schema_dir function)
  file(GLOB sql_files CONFIGURE_DEPENDS ${schema_dir}/*.sql)
  list(SORT sql_files)
  # A CMake list holds ';', which a shell would split: pass it '|'-joined.
  list(JOIN sql_files "|" sql_files_arg)
  set(generated ${CMAKE_CURRENT_BINARY_DIR}/generated/${function}.cpp)
  add_custom_command(
    OUTPUT ${generated}
    COMMAND ${CMAKE_COMMAND} -DOUT=${generated} "-DFILES=${sql_files_arg}" -DFUNCTION=${function}
            -P ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_schema_run.cmake
    DEPENDS ${sql_files} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_schema_run.cmake
    COMMENT "Embedding SQL migrations (${function})"
    VERBATIM)
  set(${out_var} ${generated} PARENT_SCOPE)
endfunction()
