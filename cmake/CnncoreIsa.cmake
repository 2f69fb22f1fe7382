# Runtime-dispatched SIMD: each kernel family has a body in <family>_kernels.inc, compiled once per
# ISA by tiny <family>_avx2.cpp / <family>_avx512.cpp files. This module gives each variant file its
# flags and a matching CNNCORE_BUILD_<ISA> definition, so sources test our own macro, never what a
# compiler happens to predefine. The CPU is probed at run time (cpp/src/runtime.cpp), never here.
include(CheckCXXCompilerFlag)

set(CNNCORE_ISA_AVX2_FLAGS -mavx2 -mfma -mf16c)
set(CNNCORE_ISA_AVX512_FLAGS -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c)
# GCC 12's own AVX-512 intrinsic headers seed casts and reductions with a deliberately undefined
# register, which -Wmaybe-uninitialized reports at every use (GCC bug 105593); silence only that.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(APPEND CNNCORE_ISA_AVX512_FLAGS -Wno-maybe-uninitialized -Wno-uninitialized)
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  check_cxx_compiler_flag("-mavx2 -mfma" CNNCORE_COMPILER_HAS_AVX2)
  check_cxx_compiler_flag("-mavx512f -mavx512bw -mavx512dq -mavx512vl" CNNCORE_COMPILER_HAS_AVX512)
endif()

function(cnncore_add_isa_variants target dir)
  foreach(isa AVX2 AVX512)
    string(TOLOWER ${isa} suffix)
    if(CNNCORE_COMPILER_HAS_${isa})
      file(GLOB _files CONFIGURE_DEPENDS ${dir}/*_${suffix}.cpp)
      target_sources(${target} PRIVATE ${_files})
      set_source_files_properties(${_files} PROPERTIES COMPILE_OPTIONS "${CNNCORE_ISA_${isa}_FLAGS}")
      target_compile_definitions(${target} PRIVATE CNNCORE_BUILD_${isa}=1)
    endif()
  endforeach()
endfunction()
