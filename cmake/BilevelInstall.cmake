# `cmake --install` produces a CMake package: find_package(bilevel CONFIG REQUIRED) and
# target_link_libraries(app PRIVATE bilevel::bilevel).
include(CMakePackageConfigHelpers)

install(TARGETS bilevel EXPORT bilevelTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/bilevel DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT bilevelTargets NAMESPACE bilevel::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bilevel)

configure_package_config_file(cmake/bilevelConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/bilevelConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bilevel)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/bilevelConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/bilevelConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/bilevelConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bilevel)
