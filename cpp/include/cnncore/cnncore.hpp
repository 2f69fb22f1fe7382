// The umbrella header: everything an embedder needs.
//
//   find_package(cnncore CONFIG REQUIRED)               # CMake
//   target_link_libraries(app PRIVATE cnncore::cnncore)
//   #include <cnncore/cnncore.hpp>
//
// ABI rules. libcnncore exports only what is marked CNNCORE_API (everything else is hidden), and
// its interface uses standard-library types (std::string, std::vector, std::shared_ptr,
// std::function, std::optional) because the ops take and return them. So:
//   - build the application with a C++17 compiler using the same standard library and the same
//     ABI setting as the library (libstdc++ with _GLIBCXX_USE_CXX11_ABI=1, the default since
//     GCC 5; GCC and Clang on Linux interoperate with it);
//   - the version macros (cnncore/version.hpp) and cnncore::version() must agree: link the
//     library the headers came with; 0.x minor versions may change the ABI, so the CMake
//     package only accepts the same major.minor.
// Errors are cnncore::Error subclasses (ValueError, TypeError, IndexError) with the messages
// Python shows; they cross the library boundary as ordinary exceptions.
#pragma once

#include "cnncore/graph.hpp"
#include "cnncore/ops.hpp"
#include "cnncore/runtime.hpp"
#include "cnncore/tensor.hpp"
