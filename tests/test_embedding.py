"""The C++ package location: cnncore.get_cmake_dir() and python -m cnncore --cmake-dir."""

import os
import subprocess
import sys

import pytest

import cnncore


def test_get_cmake_dir_points_at_the_package_or_says_why_not():
    try:
        d = cnncore.get_cmake_dir()
    except FileNotFoundError as e:  # running from the source tree, not an installed wheel
        assert "not installed from a wheel" in str(e)
        return
    assert os.path.isfile(os.path.join(d, "cnncoreConfig.cmake"))
    assert os.path.isfile(os.path.join(d, "cnncoreConfigVersion.cmake"))
    lib = os.path.dirname(os.path.dirname(d))
    assert any(f.startswith("libcnncore") for f in os.listdir(lib))
    include = os.path.join(os.path.dirname(lib), "include", "cnncore")
    for header in ("cnncore.hpp", "graph.hpp", "tensor.hpp", "version.hpp"):
        assert os.path.isfile(os.path.join(include, header)), header


def test_cli_prints_the_same_directory():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    r = subprocess.run([sys.executable, "-m", "cnncore", "--cmake-dir"], capture_output=True,
                       text=True, env=env, timeout=120)
    try:
        expected = cnncore.get_cmake_dir()
    except FileNotFoundError:
        assert r.returncode == 2 and "not installed from a wheel" in r.stderr
        return
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == expected


@pytest.mark.parametrize("macro", ["CNNCORE_VERSION_MAJOR", "CNNCORE_VERSION_MINOR"])
def test_version_header_is_generated_from_the_project_version(macro):
    try:
        d = cnncore.get_cmake_dir()
    except FileNotFoundError:
        pytest.skip("no installed headers (source tree)")
    header = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(d))), "include",
                          "cnncore", "version.hpp")
    with open(header) as f:
        text = f.read()
    major, minor, _ = cnncore.__version__.split(".")
    value = major if macro.endswith("MAJOR") else minor
    assert f"#define {macro} {value}" in text
