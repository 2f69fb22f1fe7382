// The umbrella header: everything an embedder needs.
#pragma once

#include "cnncore/graph.hpp"
#include "cnncore/ops.hpp"
#include "cnncore/runtime.hpp"
#include "cnncore/tensor.hpp"
