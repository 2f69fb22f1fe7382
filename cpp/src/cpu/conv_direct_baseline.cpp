#define CNNCORE_KERNEL_ISA 0
#define CNNCORE_ISA_NS baseline
#include "cpu/conv_direct_kernels.inc"
