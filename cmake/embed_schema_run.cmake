# cmake -P helper for EmbedSchema.cmake: writes OUT from the list FILES.
set(body "// Generated from schema/*/*.sql by cmake/embed_schema_run.cmake. Do not edit.\n#include \"store/migrations.hpp\"\n\nnamespace isync::store {\n\nconst std::vector<migration>& ${FUNCTION}() {\n    static const std::vector<migration> all{\n")
string(REPLACE "|" ";" FILES "${FILES}")
foreach(f ${FILES})
  get_filename_component(name ${f} NAME_WE)
  string(REGEX MATCH "^[0-9]+" number ${name})
  math(EXPR version "${number}")
  file(READ ${f} sql)
  # A raw string delimiter that SQL will never contain.
  string(APPEND body "        {${version}, \"${name}\", R\"isync_sql(${sql})isync_sql\"},\n")
endforeach()
string(APPEND body "    };\n    return all;\n}\n\n}  // namespace isync::store\n")
file(WRITE ${OUT} "${body}")
