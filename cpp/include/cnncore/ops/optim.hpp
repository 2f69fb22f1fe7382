// Fused optimizer updates: one pass over each parameter tensor, in place.
#pragma once

#include "cnncore/tensor.hpp"

namespace cnncore {}  // namespace cnncore
