# Third-party dependencies of the library and its tools.
find_package(CUDAToolkit REQUIRED)
# CUDA 13 keeps Thrust/CUB/libcu++ under include/cccl; CMake 3.25 does not add it for .cpp files.
find_package(CCCL CONFIG REQUIRED HINTS "${CUDAToolkit_LIBRARY_DIR}/cmake")
find_package(OpenMP REQUIRED COMPONENTS CXX)

# CPU backend BLAS: OpenBLAS through its CBLAS interface.
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_path(BILEVEL_CBLAS_INCLUDE_DIR NAMES cblas.h
          PATH_SUFFIXES openblas openblas-pthread openblas-openmp
          HINTS /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu)
if(NOT BILEVEL_CBLAS_INCLUDE_DIR)
  message(FATAL_ERROR "cblas.h not found: install OpenBLAS (apt-get install libopenblas-dev)")
endif()

if(BILEVEL_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(BILEVEL_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
if(BILEVEL_BUILD_CLI)
  find_package(CLI11 CONFIG REQUIRED)
endif()
