#define CNNCORE_KERNEL_ISA 2
#define CNNCORE_ISA_NS avx2
#include "cpu/conv_direct_kernels.inc"
