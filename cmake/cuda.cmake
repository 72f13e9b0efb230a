# The CUDA part of the native core (issue 10): toolkit, cuDNN 9, cuBLAS(Lt), NCCL.
#   -DM2T_CUDA=AUTO (default)  build it when an nvcc is found; otherwise nothing here touches the build
#   -DM2T_CUDA=ON              required: a clear error names what is missing
#   -DM2T_CUDA=OFF             never
# Search order for the toolkit: CUDA_HOME / CUDA_PATH / CUDAToolkit_ROOT (cmake or environment), nvcc on PATH,
# /usr/local/cuda, then NVIDIA's PyPI wheels in the project venv (scripts/setup-cuda-wheels.sh → .venv-cuda/,
# site-packages/nvidia/cu13/{bin,include,lib}). cuDNN: CUDNN_ROOT, the toolkit, system paths, the wheels
# (nvidia/cudnn); NCCL likewise with NCCL_ROOT (nvidia/nccl).
# Sets M2T_WITH_CUDA (ON when built) and the imported targets M2T::cudnn, M2T::nccl, M2T::cublas, M2T::cublasLt
# (cuBLAS: the toolkit's, else CUBLAS_ROOT, else the wheels). native/cuda/CMakeLists.txt defines m2t_cuda and m2t_cuda_tests.
set(M2T_CUDA AUTO CACHE STRING "Build the CUDA kernels: AUTO (when a toolkit is found), ON, OFF")
set_property(CACHE M2T_CUDA PROPERTY STRINGS AUTO ON OFF)
set(M2T_CUDA_ARCHS "80-real;90-real;90-virtual" CACHE STRING
  "CUDA architectures (sm_80, sm_90 + PTX for newer cards); a single arch (e.g. 80-real) builds faster for development")
get_filename_component(_m2t_repo "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(M2T_CUDA_WHEELS "${_m2t_repo}/.venv-cuda" CACHE PATH
  "Python venv holding NVIDIA's CUDA wheels (scripts/setup-cuda-wheels.sh)")
set(M2T_WITH_CUDA OFF)

string(TOUPPER "${M2T_CUDA}" _m2t_cuda_mode)
if(NOT _m2t_cuda_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "M2T_CUDA must be AUTO, ON or OFF (got '${M2T_CUDA}')")
endif()

function(_m2t_cuda_fail msg)
  if(_m2t_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "M2T_CUDA=ON: ${msg}")
  endif()
  message(STATUS "momentum2-teacher: CUDA off (${msg})")
endfunction()

if(NOT _m2t_cuda_mode STREQUAL "OFF")
  # The wheels' nvidia/ folder (site-packages/nvidia), if the venv exists.
  file(GLOB _m2t_wheel_dirs LIST_DIRECTORIES true "${M2T_CUDA_WHEELS}/lib/python3*/site-packages/nvidia")
  set(_m2t_wheel_nvidia "")
  if(_m2t_wheel_dirs)
    list(GET _m2t_wheel_dirs 0 _m2t_wheel_nvidia)
  endif()

  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    set(_hints "")
    foreach(_v CUDA_HOME CUDA_PATH CUDAToolkit_ROOT)
      if(DEFINED ${_v})
        list(APPEND _hints "${${_v}}/bin")
      elseif(DEFINED ENV{${_v}})
        list(APPEND _hints "$ENV{${_v}}/bin")
      endif()
    endforeach()
    find_program(M2T_NVCC nvcc HINTS ${_hints} PATHS /usr/local/cuda/bin "${_m2t_wheel_nvidia}/cu13/bin")
    if(M2T_NVCC)
      set(CMAKE_CUDA_COMPILER "${M2T_NVCC}")
    endif()
  endif()

  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    _m2t_cuda_fail("no nvcc found: set CUDA_HOME, put nvcc on PATH, or run scripts/setup-cuda-wheels.sh")
  else()
    set(CMAKE_CUDA_ARCHITECTURES "${M2T_CUDA_ARCHS}")
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    enable_language(CUDA)
    get_filename_component(_m2t_cuda_root "${CMAKE_CUDA_COMPILER}" DIRECTORY)
    get_filename_component(_m2t_cuda_root "${_m2t_cuda_root}" DIRECTORY)
    set(CUDAToolkit_ROOT "${_m2t_cuda_root}")
    find_package(CUDAToolkit REQUIRED)

    # cuDNN 9 and NCCL: headers + libraries (the wheels carry versioned sonames; setup-cuda-wheels.sh adds the
    # unversioned links, and the versioned names are searched too).
    set(_cudnn_hints ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_LIBRARY_ROOT} "${_m2t_cuda_root}")
    if(_m2t_wheel_nvidia)
      list(APPEND _cudnn_hints "${_m2t_wheel_nvidia}/cudnn")
    endif()
    find_path(M2T_CUDNN_INCLUDE cudnn_version.h HINTS ${_cudnn_hints} PATH_SUFFIXES include)
    find_library(M2T_CUDNN_LIB NAMES cudnn libcudnn.so.9 HINTS ${_cudnn_hints} PATH_SUFFIXES lib lib64
      lib/x86_64-linux-gnu)
    set(_nccl_hints ${NCCL_ROOT} $ENV{NCCL_ROOT} "${_m2t_cuda_root}")
    if(_m2t_wheel_nvidia)
      list(APPEND _nccl_hints "${_m2t_wheel_nvidia}/nccl")
    endif()
    find_path(M2T_NCCL_INCLUDE nccl.h HINTS ${_nccl_hints} PATH_SUFFIXES include)
    find_library(M2T_NCCL_LIB NAMES nccl libnccl.so.2 HINTS ${_nccl_hints} PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)

    # cuBLAS/cuBLASLt: the toolkit's, else CUBLAS_ROOT or the wheels (nvidia/cu13 for CUDA 13, nvidia/cublas before).
    set(_cublas_hints ${CUBLAS_ROOT} $ENV{CUBLAS_ROOT} ${CUDAToolkit_LIBRARY_ROOT} "${_m2t_cuda_root}")
    if(_m2t_wheel_nvidia)
      list(APPEND _cublas_hints "${_m2t_wheel_nvidia}/cu13" "${_m2t_wheel_nvidia}/cublas")
    endif()
    find_path(M2T_CUBLAS_INCLUDE cublasLt.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${_cublas_hints} PATH_SUFFIXES include)
    find_library(M2T_CUBLASLT_LIB NAMES cublasLt libcublasLt.so.13 libcublasLt.so.12
      HINTS ${CUDAToolkit_LIBRARY_DIR} ${_cublas_hints} PATH_SUFFIXES lib lib64)
    find_library(M2T_CUBLAS_LIB NAMES cublas libcublas.so.13 libcublas.so.12
      HINTS ${CUDAToolkit_LIBRARY_DIR} ${_cublas_hints} PATH_SUFFIXES lib lib64)

    set(_missing "")
    if(NOT TARGET CUDA::cudart_static)
      list(APPEND _missing "the CUDA runtime (cudart)")
    endif()
    if(NOT M2T_CUBLAS_INCLUDE OR NOT M2T_CUBLASLT_LIB OR NOT M2T_CUBLAS_LIB)
      list(APPEND _missing "cuBLAS/cuBLASLt (set CUBLAS_ROOT)")
    endif()
    if(NOT M2T_CUDNN_INCLUDE OR NOT M2T_CUDNN_LIB)
      list(APPEND _missing "cuDNN 9 (set CUDNN_ROOT)")
    endif()
    if(NOT M2T_NCCL_INCLUDE OR NOT M2T_NCCL_LIB)
      list(APPEND _missing "NCCL (set NCCL_ROOT)")
    endif()
    if(_missing)
      _m2t_cuda_fail("nvcc ${CMAKE_CUDA_COMPILER_VERSION} found, but not: ${_missing}")
    else()
      add_library(M2T::cudnn UNKNOWN IMPORTED)
      set_target_properties(M2T::cudnn PROPERTIES IMPORTED_LOCATION "${M2T_CUDNN_LIB}"
        INTERFACE_INCLUDE_DIRECTORIES "${M2T_CUDNN_INCLUDE}")
      add_library(M2T::cublasLt UNKNOWN IMPORTED)
      set_target_properties(M2T::cublasLt PROPERTIES IMPORTED_LOCATION "${M2T_CUBLASLT_LIB}"
        INTERFACE_INCLUDE_DIRECTORIES "${M2T_CUBLAS_INCLUDE}")
      add_library(M2T::cublas UNKNOWN IMPORTED)
      set_target_properties(M2T::cublas PROPERTIES IMPORTED_LOCATION "${M2T_CUBLAS_LIB}"
        INTERFACE_INCLUDE_DIRECTORIES "${M2T_CUBLAS_INCLUDE}")
      add_library(M2T::nccl UNKNOWN IMPORTED)
      set_target_properties(M2T::nccl PROPERTIES IMPORTED_LOCATION "${M2T_NCCL_LIB}"
        INTERFACE_INCLUDE_DIRECTORIES "${M2T_NCCL_INCLUDE}")
      set(M2T_WITH_CUDA ON)

      # The directory-wide host flags (-march=..., -mtune=...) are gcc flags: hand them to nvcc's host compiler
      # instead of nvcc itself.
      get_directory_property(_opts COMPILE_OPTIONS)
      set(_wrapped "")
      foreach(_o IN LISTS _opts)
        list(APPEND _wrapped "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${_o}>" "$<$<NOT:$<COMPILE_LANGUAGE:CUDA>>:${_o}>")
      endforeach()
      set_directory_properties(PROPERTIES COMPILE_OPTIONS "${_wrapped}")

      message(STATUS "momentum2-teacher: CUDA on: nvcc ${CMAKE_CUDA_COMPILER_VERSION} (${CMAKE_CUDA_COMPILER}), "
        "archs ${CMAKE_CUDA_ARCHITECTURES}; cuDNN ${M2T_CUDNN_LIB}; NCCL ${M2T_NCCL_LIB}; "
        "cuBLASLt ${M2T_CUBLASLT_LIB}")
    endif()
  endif()
endif()
