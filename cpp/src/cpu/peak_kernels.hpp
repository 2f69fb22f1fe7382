// Per-ISA entry point of the FMA peak probe (body in peak_kernels.inc).
#pragma once

#include <cstdint>

#include "cpu/dispatch.hpp"

namespace cnncore {

CNNCORE_DECLARE_ISA_KERNELS(
    // Runs `iters` rounds of kChains independent vector FMAs; returns the flops done (2 per lane
    // per FMA) and writes a value derived from the accumulators to *sink so nothing is elided.
    double fma_chains(int64_t iters, float* sink);)

}  // namespace cnncore
