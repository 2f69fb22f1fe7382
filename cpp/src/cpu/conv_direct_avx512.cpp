#define CNNCORE_KERNEL_ISA 3
#define CNNCORE_ISA_NS avx512
#include "cpu/conv_direct_kernels.inc"
