"""The vision examples run end to end: a tiny smoke run of each by default, and (marked slow)
the training runs that reach the quality the README states."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from cnncore.image import write_image
from helpers import child_env

ROOT = os.path.join(os.path.dirname(__file__), "..")


def run_example(name, *args, timeout=600):
    env = child_env()
    res = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "python", name), *args],
                         capture_output=True, text=True, env=env, timeout=timeout, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def last_value(out, key):
    return float(re.findall(rf"{key} ([0-9.]+)", out)[-1])


def test_filters_example(tmp_path):
    image = np.zeros((48, 64), np.float32)
    image[10:30, 20:50] = 0.8
    write_image(tmp_path / "in.png", image)
    out = run_example("filters.py", str(tmp_path / "in.png"), "--out", str(tmp_path))
    assert "canny sigma=2" in out and (tmp_path / "canny_sigma2.png").is_file()


@pytest.mark.parametrize("name", ["detection.py", "localization.py"])
def test_training_examples_smoke(name):
    out = run_example(name, "--train", "32", "--test", "8", "--epochs", "1", "--threads", "1")
    assert "epoch  1" in out


def test_segmentation_example_smoke(tmp_path):
    out = run_example("segmentation.py", "--train", "16", "--test", "4", "--epochs", "1",
                      "--threads", "1", "--out", str(tmp_path))
    assert "mean IoU" in out and "checkerboard" in out
    assert (tmp_path / "checkerboard.png").is_file() and (tmp_path / "predictions.png").is_file()


def test_siamese_example_smoke():
    out = run_example("siamese.py", "--steps", "3", "--train-classes", "20", "--test-classes",
                      "20", "--episodes", "10", "--threads", "1")
    assert "5-way one-shot: trained" in out and "verification: trained" in out


@pytest.mark.slow
def test_detection_reaches_map_0_8():
    out = run_example("detection.py", "--threads", "1", timeout=1200)
    assert last_value(out, r"test mAP@0\.5") >= 0.85, out  # measured 0.963


@pytest.mark.slow
def test_siamese_one_shot_beats_raw_pixels_on_unseen_glyphs():
    out = run_example("siamese.py", "--steps", "300", "--train-classes", "300", "--episodes",
                      "500", timeout=1200)
    for n in (5, 20):
        gain, half = (float(v) for v in re.findall(
            rf"{n}-way one-shot: .* gain \+([0-9.]+) \+- ([0-9.]+)", out)[-1])
        assert gain - half > 0.1, out   # measured +0.25 (5-way) and +0.39 (20-way)
    trained, pixels = (float(v) for v in re.findall(
        r"verification: trained ([0-9.]+) vs pixels ([0-9.]+)", out)[-1])
    assert trained > pixels + 0.05, out
