import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # `from helpers import ...` in every test module

from cnncore import _core  # noqa: E402


@pytest.fixture(params=_core.available_isas())
def isa(request):
    """Runs a test once per SIMD path this build and CPU can run, with that path forced."""
    previous = _core.active_isa()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(previous)


def pytest_report_header(config):
    info = _core.build_info()
    skipped = sorted({"baseline", "avx2", "avx512"} - set(_core.available_isas()))
    return [f"cnncore {info['version']}: isa={info['isa']} compiled={info['isas_compiled']} "
            f"cpu={info['cpu_isas']} threads={info['num_threads']}",
            f"ISA paths not testable on this machine: {skipped or 'none'}"]
