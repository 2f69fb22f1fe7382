"""Trainer: fit/evaluate/predict, history files, early stopping, exact resume; the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cnncore
import cnncore.nn as nn
from cnncore import data, optim
from cnncore.train import Trainer


def _data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0, :4].mean(axis=(1, 2)) > 0).astype(np.int64)  # learnable: the top half's sign
    return x, y


def _setup(seed=0, checkpoint_dir=None, **kw):
    cnncore.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, 2))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    x, y = _data()
    train = data.DataLoader(data.TensorDataset(cnncore.tensor(x[:192]), cnncore.tensor(y[:192])),
                            batch_size=16, shuffle=True, generator=seed)
    val = data.DataLoader(data.TensorDataset(cnncore.tensor(x[192:]), cnncore.tensor(y[192:])),
                          batch_size=32)
    t = Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=sched, progress=False,
                checkpoint_dir=checkpoint_dir, verbose=False, **kw)
    return t, train, val


def test_fit_learns_and_records_history(tmp_path):
    t, train, val = _setup(history_path=tmp_path / "h.csv")
    hist = t.fit(train, val, epochs=4)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["val_accuracy"] >= 0.75
    assert [h["lr"] for h in hist] == pytest.approx([0.05, 0.05, 0.025, 0.025])
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,train_loss,train_accuracy") and len(lines) == 5
    res = t.evaluate(val)
    assert res["accuracy"] == pytest.approx(hist[-1]["val_accuracy"])
    pred = t.predict(val)
    assert tuple(pred.shape) == (64, 2)


def test_resume_is_bit_exact(tmp_path):
    full, train, val = _setup(checkpoint_dir=tmp_path / "full")
    full.fit(train, val, epochs=4)
    reference = {k: v.numpy().copy() for k, v in full.model.state_dict().items()}

    first, train, val = _setup(checkpoint_dir=tmp_path / "split")
    first.fit(train, val, epochs=2)  # "interrupted" after epoch 2
    cnncore.manual_seed(1234)        # whatever happened in between must not matter
    second, train, val = _setup(seed=99, checkpoint_dir=tmp_path / "split")
    second.fit(train, val, epochs=4, resume=True)
    assert second.epoch == 4 and len(second.history) == 4
    for k, v in second.model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), reference[k], err_msg=k)
    files = sorted(os.listdir(tmp_path / "split"))  # one generation left after four saves
    assert files == ["gen-000003", "state.json"]
    assert sorted(os.listdir(tmp_path / "split" / "gen-000003")) == ["model.safetensors",
                                                                     "optimizer.safetensors"]


def test_early_stopping_and_bad_arguments():
    t, train, val = _setup(early_stopping_patience=1, monitor="val_loss")
    t.optimizer.param_groups[0]["lr"] = 0.0  # nothing improves after the first epoch
    hist = t.fit(train, val, epochs=10)
    assert len(hist) == 2
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        Trainer(t.model, t.optimizer, nn.CrossEntropyLoss(), metrics=("f1",))
    with pytest.raises(TypeError, match="nn.Module"):
        Trainer(object(), t.optimizer, nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match="epochs"):
        t.fit(train, val, epochs=-1)
    with pytest.raises(FileNotFoundError, match="state.json"):
        t.load_checkpoint("/nonexistent/dir")


def _cli(*args, timeout=600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-m", "cnncore", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_cli_errors_are_one_line_with_status_2(tmp_path):
    for args in (["train", "--dataset", "imagenet"], ["train", "--model", "resnet999"],
                 ["train", "--dataset", f"mnist:{tmp_path}/none"],
                 ["summary", "--model", "nope"], ["eval", "--checkpoint", str(tmp_path)]):
        r = _cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr


def test_cli_summary_prints_the_table():
    r = _cli("summary", "--model", "lenet5", "--input-size", "1,32,32")
    assert r.returncode == 0, r.stderr
    assert "Total params: 61,706" in r.stdout


@pytest.mark.slow
def test_cli_default_train_reaches_97_percent(tmp_path):
    out = tmp_path / "m.json"
    r = _cli("train", "--metrics-json", str(out), "--checkpoint-dir", str(tmp_path / "ck"))
    assert r.returncode == 0, r.stderr
    m = json.loads(out.read_text())
    assert m["test_accuracy"] >= 0.97, m
    r = _cli("eval", "--checkpoint", str(tmp_path / "ck"))
    assert r.returncode == 0 and f"{m['test_accuracy']:.4f}" in r.stdout, r.stdout + r.stderr
