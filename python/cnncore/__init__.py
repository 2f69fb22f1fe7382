"""cnncore: a small, fast convolutional-neural-network engine with a PyTorch-shaped API."""

from . import _core
from .tensor import (  # noqa: F401
    Tensor, arange, empty, enable_grad, float32, from_numpy, full, get_rng_state, int64,
    is_grad_enabled, manual_seed, no_grad, ones, ones_like, rand, randn, randn_like,
    set_grad_enabled, set_rng_state, tensor, zeros, zeros_like,
)
from . import functional  # noqa: F401
from ._ops.conv import explain_conv  # noqa: F401
from ._ops.linalg import matmul  # noqa: F401
from ._ops.tensor_ops import *  # noqa: F401,F403  (torch.cat, torch.sum, ... as cnncore.*)
from . import nn  # noqa: F401
from . import data, io, models, optim, train  # noqa: F401,E402
from . import detection, filters, image, localization, segmentation  # noqa: F401,E402
from . import style, viz  # noqa: F401,E402
from . import distributed, onnx  # noqa: F401,E402  (mpi4py and onnx load only when used)
from .io import load, save  # noqa: F401
from . import graph  # noqa: F401,E402
from . import cuda  # noqa: F401,E402  (the CUDA backend's runtime; in every build)
# ---- cuda-c: the TF32 switches (torch.backends names, torch.set_float32_matmul_precision) ----
from . import backends  # noqa: F401,E402
from .backends import get_float32_matmul_precision, set_float32_matmul_precision  # noqa: F401,E402
# ---- end cuda-c ----
from .graph import load_model, optimize_for_inference  # noqa: F401,E402
from .summary import conv_output_shape, summary  # noqa: F401

__version__ = _core.version()


def set_num_threads(n: int) -> None:
    """Threads every kernel uses (OpenMP). The default is OMP_NUM_THREADS or the core count."""
    from ._ops._args import check_int
    _core.set_num_threads(check_int(n, "set_num_threads", "n"))


def get_num_threads() -> int:
    return _core.get_num_threads()


_deterministic_warn_only = False


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """torch's switch. With mode=True every kernel sums in an order fixed by the shapes alone, so
    results are bit-identical across thread counts (without it, the conv2d / conv_transpose2d
    weight gradient follows the thread count when threads split the batch). With a fixed seed
    and thread count, results are reproducible either way. No cnncore kernel lacks a
    deterministic form, so warn_only is only recorded."""
    global _deterministic_warn_only
    for name, v in (("mode", mode), ("warn_only", warn_only)):
        if not isinstance(v, bool):
            raise TypeError(f"use_deterministic_algorithms: {name} must be a bool, but got "
                            f"{v!r} ({type(v).__name__})")
    _core.set_deterministic_algorithms(mode)
    _deterministic_warn_only = warn_only if mode else False


def are_deterministic_algorithms_enabled() -> bool:
    return _core.deterministic_algorithms()


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _deterministic_warn_only


def build_info() -> dict:
    """Facts about this build and machine: version, compiler, ISAs compiled, ISA in use, CPU ISAs,
    OpenMP, threads, CUDA, and notes on anything missing."""
    raw = _core.build_info()
    return {
        "version": raw["version"],
        "compiler": raw["compiler"],
        "isas_compiled": raw["isas_compiled"].split(","),
        "isa": raw["isa"],
        "cpu_isas": raw["cpu_isas"].split(","),
        "openmp": raw["openmp"] == "yes",
        "num_threads": int(raw["num_threads"]),
        "cuda": raw["cuda"] == "yes",
        "notes": raw["notes"],
    }


def get_cmake_dir() -> str:
    """The directory holding cnncoreConfig.cmake inside this installed package: pass it as
    -Dcnncore_DIR=... to build C++ against the library the wheel carries."""
    import os
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "cmake", "cnncore")
    if not os.path.isfile(os.path.join(d, "cnncoreConfig.cmake")):
        raise FileNotFoundError(f"get_cmake_dir: no CMake package in {d}; this cnncore was not "
                                f"installed from a wheel (pip install .), or was built in place")
    return d
