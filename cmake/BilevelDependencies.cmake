# Third-party dependencies of the library and its tools.
if(NOT BILEVEL_CUDA_EMULATION)
  find_package(CUDAToolkit REQUIRED)
  # CUDA 13 keeps Thrust/CUB/libcu++ under include/cccl; CMake 3.25 does not add it for .cpp
  # files.
  find_package(CCCL CONFIG REQUIRED HINTS "${CUDAToolkit_LIBRARY_DIR}/cmake")
endif()
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(ZLIB REQUIRED)

# CPU backend BLAS: OpenBLAS through its CBLAS interface, in its OpenMP build. The pthreads
# build fights the OpenMP loops for the cores (OpenMP threads spin after a parallel region
# while OpenBLAS's own threads wait for them): measured 20x slower minibatch HVPs on 2 cores.
# Debian: libopenblas-openmp-dev. The library's RUNPATH points at this directory, so the
# OpenMP build is loaded even where the system default (alternatives) is the pthreads one.
set(BILEVEL_BLAS_ARCH_DIR "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}")
find_library(BILEVEL_OPENBLAS_LIBRARY NAMES openblas
             HINTS "${BILEVEL_BLAS_ARCH_DIR}/openblas-openmp" NO_DEFAULT_PATH)
find_path(BILEVEL_OPENBLAS_INCLUDE_DIR NAMES cblas.h
          HINTS "/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp" NO_DEFAULT_PATH)
if(BILEVEL_OPENBLAS_LIBRARY AND BILEVEL_OPENBLAS_INCLUDE_DIR)
  add_library(bilevel_blas INTERFACE)
  target_link_libraries(bilevel_blas INTERFACE "${BILEVEL_OPENBLAS_LIBRARY}")
else()
  message(WARNING "OpenBLAS (OpenMP build) not found: falling back to the default BLAS. "
                  "Install libopenblas-openmp-dev for a CPU backend that does not oversubscribe.")
  set(BLA_VENDOR OpenBLAS)
  find_package(BLAS REQUIRED)
  unset(BILEVEL_OPENBLAS_INCLUDE_DIR CACHE)
  find_path(BILEVEL_OPENBLAS_INCLUDE_DIR NAMES cblas.h
            PATH_SUFFIXES openblas openblas-pthread openblas-openmp
            HINTS "/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}")
  if(NOT BILEVEL_OPENBLAS_INCLUDE_DIR)
    message(FATAL_ERROR "cblas.h not found: install OpenBLAS (apt-get install libopenblas-openmp-dev)")
  endif()
  add_library(bilevel_blas INTERFACE)
  target_link_libraries(bilevel_blas INTERFACE BLAS::BLAS)
endif()
message(STATUS "bilevel CPU BLAS: ${BILEVEL_OPENBLAS_LIBRARY}; cblas.h in ${BILEVEL_OPENBLAS_INCLUDE_DIR}")

# Distributed runs: MPI when an MPI library is installed (Debian: libopenmpi-dev), optional.
# BILEVEL_WITH_MPI=OFF builds without it even when one is there.
option(BILEVEL_WITH_MPI "Build the MPI transport when an MPI library is found" ON)
set(BILEVEL_HAVE_MPI OFF)
if(BILEVEL_WITH_MPI)
  set(MPI_CXX_SKIP_MPICXX TRUE)  # the C API only, not the deprecated C++ bindings
  find_package(MPI COMPONENTS CXX)
  if(MPI_CXX_FOUND)
    set(BILEVEL_HAVE_MPI ON)
  endif()
endif()
message(STATUS "bilevel MPI: ${BILEVEL_HAVE_MPI}")

if(BILEVEL_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(BILEVEL_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
if(BILEVEL_BUILD_CLI)
  find_package(CLI11 CONFIG REQUIRED)
  find_package(nlohmann_json CONFIG REQUIRED)
endif()
