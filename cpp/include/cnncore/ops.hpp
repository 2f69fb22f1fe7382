// Every op as a free function, forward and backward side by side, one header per family.
#pragma once

#include "cnncore/ops/activation.hpp"
#include "cnncore/ops/conv.hpp"
#include "cnncore/ops/linalg.hpp"
#include "cnncore/ops/loss.hpp"
#include "cnncore/ops/norm.hpp"
#include "cnncore/ops/optim.hpp"
#include "cnncore/ops/pool.hpp"
#include "cnncore/ops/resample.hpp"
#include "cnncore/ops/tensor_ops.hpp"
