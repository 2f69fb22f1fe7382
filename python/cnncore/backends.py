"""cnncore.backends: the CUDA backend's math switches, named as in torch.backends.

    cnncore.backends.cuda.matmul.allow_tf32 = True   # linear (forward and backward) on TF32
    cnncore.backends.cudnn.allow_tf32 = True         # conv2d (forward and backward) on TF32
    cnncore.set_float32_matmul_precision("high")     # the same as matmul.allow_tf32 = True

TF32 runs linear / conv2d products on tensor cores (nvcuda::wmma, inputs rounded to TF32's 10-bit
mantissa, fp32 accumulation): about 1e-3 relative error per product instead of fp32's 1e-7. Both
switches are off by default (torch's cudnn.allow_tf32 defaults to True: here every TF32 path is
opt-in). They take effect only on a GPU of compute capability 8.0 or newer (Ampere, Hopper, ...);
elsewhere, and on the CPU, the fp32 kernels run whatever they say. cnncore has no cuDNN: the
convolution switch keeps torch's name (``cudnn.allow_tf32``) so torch code ports unchanged, and
``cnncore.backends.cuda.conv.allow_tf32`` is the same switch under a name that says what it is.
"""

from __future__ import annotations

from . import _core

__all__ = ["cuda", "cudnn", "set_float32_matmul_precision", "get_float32_matmul_precision"]

_PRECISIONS = ("highest", "high", "medium")


def _check_bool(value, name: str) -> bool:
    # torch raises a RuntimeError ("expects a bool"); cnncore's convention for a wrong type is a
    # TypeError naming the argument. bool subclasses int, so 0 / 1 are refused as torch does.
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, but got {value!r} ({type(value).__name__})")
    return value


class _MatmulFlags:
    """torch.backends.cuda.matmul: allow_tf32 for linear (the matmul precision != 'highest')."""

    __slots__ = ()

    @property
    def allow_tf32(self) -> bool:
        return _core.cuda_matmul_precision() != 0

    @allow_tf32.setter
    def allow_tf32(self, value) -> None:
        # As in torch: True means precision 'high', False 'highest'.
        _core.cuda_set_matmul_precision(1 if _check_bool(value, "backends.cuda.matmul.allow_tf32")
                                        else 0)

    def __repr__(self) -> str:
        return f"cnncore.backends.cuda.matmul(allow_tf32={self.allow_tf32})"


class _ConvFlags:
    """The convolution switch: torch.backends.cudnn.allow_tf32 (cnncore has no cuDNN)."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    @property
    def allow_tf32(self) -> bool:
        return _core.cuda_conv_allow_tf32()

    @allow_tf32.setter
    def allow_tf32(self, value) -> None:
        _core.cuda_set_conv_allow_tf32(_check_bool(value, f"{self._name}.allow_tf32"))

    def __repr__(self) -> str:
        return f"cnncore.{self._name}(allow_tf32={self.allow_tf32})"


class _CudnnFlags(_ConvFlags):
    """torch.backends.cudnn's switch for convolutions; is_available() is False (no cuDNN)."""

    __slots__ = ()

    @staticmethod
    def is_available() -> bool:
        return False


class _CudaBackend:
    """torch.backends.cuda: is_built() and the matmul switches (plus conv, cnncore's own name)."""

    __slots__ = ()
    matmul = _MatmulFlags()
    conv = _ConvFlags("backends.cuda.conv")

    @staticmethod
    def is_built() -> bool:
        """Whether this build has the CUDA backend (torch.backends.cuda.is_built)."""
        return _core.cuda_compiled()

    @staticmethod
    def tf32_supported(device: int = 0) -> bool:
        """Whether the TF32 switches take effect on CUDA device `device` (compute capability >=
        8.0); False without a CUDA build or GPU. Not in torch."""
        if not isinstance(device, int) or isinstance(device, bool):
            raise TypeError(f"tf32_supported: device must be an int, but got {device!r} "
                            f"({type(device).__name__})")
        return _core.cuda_tf32_supported(device)


cuda = _CudaBackend()
cudnn = _CudnnFlags("backends.cudnn")


def set_float32_matmul_precision(precision: str) -> None:
    """torch.set_float32_matmul_precision: 'highest' (fp32, the default), 'high' or 'medium'
    (both let linear use TF32 on the GPU; cnncore has no bf16 path, so 'medium' is TF32 too).
    Convolutions follow backends.cudnn.allow_tf32 alone, as in torch."""
    if not isinstance(precision, str):
        raise TypeError(f"set_float32_matmul_precision: precision must be a str, but got "
                        f"{precision!r} ({type(precision).__name__})")
    if precision not in _PRECISIONS:
        raise ValueError(f"set_float32_matmul_precision: precision must be one of 'highest', "
                         f"'high', 'medium', but got {precision!r}")
    _core.cuda_set_matmul_precision(_PRECISIONS.index(precision))


def get_float32_matmul_precision() -> str:
    """'highest', 'high' or 'medium' (torch.get_float32_matmul_precision)."""
    return _PRECISIONS[_core.cuda_matmul_precision()]
