# `cpack -G DEB` (or the `package` target): incident-sync_<version>_<arch>.deb
# with the daemon, its unit and sysusers entry, the example configuration as a
# conffile, the README, the manual page (built from --help) and bash
# completion. Debian dependencies come from the binary's shared libraries
# (dpkg-shlibdeps). Tested by tests/packaging/deb_test.sh.

# The manual page, regenerated whenever the daemon is.
set(MAN_PAGE ${CMAKE_CURRENT_BINARY_DIR}/incident-syncd.1)
add_custom_command(
  OUTPUT ${MAN_PAGE}.gz
  COMMAND ${CMAKE_COMMAND} -DDAEMON=$<TARGET_FILE:incident-syncd>
          -DTEMPLATE=${PROJECT_SOURCE_DIR}/packaging/incident-syncd.1.in -DOUTPUT=${MAN_PAGE}
          -P ${PROJECT_SOURCE_DIR}/cmake/ManPage.cmake
  COMMAND gzip -9nf ${MAN_PAGE}
  DEPENDS incident-syncd ${PROJECT_SOURCE_DIR}/packaging/incident-syncd.1.in ${PROJECT_SOURCE_DIR}/cmake/ManPage.cmake
  COMMENT "Writing the manual page from incident-syncd --help"
  VERBATIM)
add_custom_target(man-page ALL DEPENDS ${MAN_PAGE}.gz)
install(FILES ${MAN_PAGE}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES contrib/bash-completion/incident-syncd DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES README.md packaging/debian/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY contrib/grafana contrib/prometheus DESTINATION ${CMAKE_INSTALL_DOCDIR}/contrib)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME incident-sync)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "incident-sync maintainers <incident-sync@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "keeps an SQLite database in step with HUMAN Code Defender's incident API")
# One string (several would be a CMake list, joined with ';'); CPack puts
# the summary above it as the synopsis line.
string(CONCAT CPACK_DEBIAN_PACKAGE_DESCRIPTION
       "incident-syncd polls GET /v1/incidents for every configured or discovered (appId, tld)\n"
       "pair and upserts incidents, scripts and actions into normalized SQLite tables, moving each\n"
       "pair's watermark in the same transaction as its data. It runs as a systemd service;\n"
       "read the database with sqlite3 or any SQL tool while it runs.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # incident-sync_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# ca-certificates: the system trust store the API's certificate is checked against.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "ca-certificates")
# libpq is loaded only for database.url (PostgreSQL), so dpkg-shlibdeps cannot see it.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libpq5")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "sqlite3, prometheus, postgresql-client")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
