#define CNNCORE_KERNEL_ISA 0
#define CNNCORE_ISA_NS baseline
#include "cpu/winograd_kernels.inc"
