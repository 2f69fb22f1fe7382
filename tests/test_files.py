"""Files survive kills and hostile bytes: checkpoints are atomic as a set, loaders reject
corrupted input with an error (never a crash), and nothing on a load path runs code."""

from __future__ import annotations

import json
import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import cnncore
from cnncore import nn, optim
from cnncore.data import datasets
from cnncore.train import Trainer, read_checkpoint_state
from helpers import fuzz_file

PACKAGE = pathlib.Path(cnncore.__file__).parent

# The writer fills every weight and momentum buffer of generation i with the value i and stores
# epoch i, so a checkpoint mixing two generations is caught by comparing the three.
WRITER = textwrap.dedent("""
    import sys
    import cnncore
    from cnncore import nn, optim
    from cnncore.train import Trainer
    directory, first = sys.argv[1], int(sys.argv[2])
    model = nn.Sequential(nn.Linear(256, 256), nn.Linear(256, 64))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(cnncore.randn(2, 256)).sum().backward()
    opt.step()
    t = Trainer(model, opt, nn.MSELoss(), progress=False, verbose=False)
    for i in range(first, first + 100000):
        with cnncore.no_grad():
            for p in model.parameters():
                p.fill_(float(i))
                opt.state[p]["momentum_buffer"].fill_(float(i))
        t.epoch = i
        t.save_checkpoint(directory)
        print(i, flush=True)
""")


def _trainer():
    model = nn.Sequential(nn.Linear(256, 256), nn.Linear(256, 64))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return Trainer(model, opt, nn.MSELoss(), progress=False, verbose=False)


def _loaded_generation(directory) -> int:
    """Loads the checkpoint and returns its generation value, asserting it is not mixed."""
    t = _trainer()
    t.load_checkpoint(directory)
    values = {float(v) for p in t.model.parameters() for v in np.unique(p.detach().numpy())}
    values |= {float(v) for s in t.optimizer.state.values()
               for v in np.unique(s["momentum_buffer"].numpy())}
    assert values == {float(t.epoch)}, f"mixed checkpoint: epoch {t.epoch}, values {values}"
    return t.epoch


def _kill_rounds(tmp_path, rounds: int, seed: int) -> int:
    rng = random.Random(seed)
    directory = tmp_path / "ckpt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    last_confirmed, start = -1, 0
    for _ in range(rounds):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(directory), str(start)],
                                stdout=subprocess.PIPE, text=True, env=env)
        first = proc.stdout.readline()  # wait until it has written one checkpoint
        assert first.strip() == str(start), f"the writer failed to start: {first!r}"
        time.sleep(rng.uniform(0.0, 0.25))  # then kill it somewhere in a later save
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        confirmed = [int(v) for v in [first, *out.split()] if v.strip()]
        last_confirmed = confirmed[-1]
        got = _loaded_generation(directory)
        # The newest confirmed save is there, or the one being written when the kill came.
        assert got in (last_confirmed, last_confirmed + 1), (got, last_confirmed)
        stale = [n for n in os.listdir(directory) if n not in ("state.json", f"gen-{got:06d}")]
        # What a kill leaves behind is only ever temporaries and uncommitted generations.
        assert all(n.startswith((".gen-", "gen-", ".state.json.")) for n in stale), stale
        start = got + 1
    return rounds


def test_checkpoint_survives_sigkill(tmp_path):
    assert _kill_rounds(tmp_path, rounds=3, seed=0) == 3


@pytest.mark.slow
def test_checkpoint_survives_sigkill_long(tmp_path):
    assert _kill_rounds(tmp_path, rounds=60, seed=1) == 60


def test_checkpoint_corruption_is_reported(tmp_path):
    t = _trainer()
    t.save_checkpoint(tmp_path)
    state, files = read_checkpoint_state(tmp_path)
    raw = bytearray(pathlib.Path(files["model.safetensors"]).read_bytes())
    raw[len(raw) // 2] ^= 0x10  # one bit in the weights: still a valid safetensors file
    pathlib.Path(files["model.safetensors"]).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupted"):
        _trainer().load_checkpoint(tmp_path)


# ---- the byte fuzzer -----------------------------------------------------------------------------
def _idx_bytes(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, ">i4").tobytes()
    return head + arr.astype(np.uint8).tobytes()


def _cifar_batch_bytes(n: int) -> bytes:
    """A CIFAR-10 python batch written as the official ones are (a pickled dict of bytes keys
    with a numpy array); made here with pickle, which the reader itself never imports."""
    import pickle
    rng = np.random.default_rng(0)
    entry = {b"batch_label": b"testing batch 1 of 1",
             b"labels": [int(v) for v in rng.integers(0, 10, n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [b"f%d.png" % i for i in range(n)]}
    return pickle.dumps(entry, protocol=2)


def _loader_cases(tmp_path):
    st_path = tmp_path / "w.safetensors"
    cnncore.save({"a": cnncore.randn(3, 4), "b": cnncore.arange(5)}, st_path)
    idx_path = tmp_path / "train-images-idx3-ubyte"
    idx_path.write_bytes(_idx_bytes(np.arange(2 * 5 * 4).reshape(2, 5, 4)))
    cifar = tmp_path / "cifar"
    cifar.mkdir()
    (cifar / "test_batch").write_bytes(_cifar_batch_bytes(4))
    ckpt = tmp_path / "ckpt"
    t = Trainer(nn.Linear(3, 2), optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1, momentum=0.9),
                nn.MSELoss(), progress=False, verbose=False)
    t.save_checkpoint(ckpt)
    _, files = read_checkpoint_state(ckpt)

    def load_ckpt():
        Trainer(nn.Linear(3, 2), optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1),
                nn.MSELoss(), progress=False, verbose=False).load_checkpoint(ckpt)

    return [
        ("safetensors", st_path, lambda: cnncore.load(st_path)),
        ("idx", idx_path, lambda: datasets.read_idx(idx_path)),
        ("cifar", cifar / "test_batch", lambda: datasets.CIFAR10(cifar, train=False)),
        ("checkpoint state", ckpt / "state.json", load_ckpt),
        ("checkpoint model", pathlib.Path(files["model.safetensors"]), load_ckpt),
    ]


def _fuzz_loaders(tmp_path, count):
    total = 0
    for name, path, load in _loader_cases(tmp_path):
        raw = path.read_bytes()
        load()  # the pristine file loads
        total += fuzz_file(path, raw, load, count, seed=len(name))
        path.write_bytes(raw)
    return total


def test_loaders_survive_corrupted_bytes(tmp_path):
    assert _fuzz_loaders(tmp_path, count=40) == 5 * 42


@pytest.mark.slow
def test_loaders_survive_corrupted_bytes_long(tmp_path):
    assert _fuzz_loaders(tmp_path, count=2000) == 5 * 2002


def test_cifar_reader_refuses_code_in_a_pickle(tmp_path):
    """A batch whose pickle would call os.system is refused before anything runs."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(ValueError, match="refus"):
        datasets.CIFAR10(tmp_path, train=False)
    assert not (tmp_path / "pwned").exists()


# ---- no code execution on a load path ------------------------------------------------------------
FORBIDDEN = [
    (r"\bpickle\.loads?\(", "pickle.load"),
    (r"\bnp\.load\([^)]*allow_pickle\s*=\s*True", "np.load(allow_pickle=True)"),
    (r"(?<![\w.])(?<!def )eval\(", "eval("),
    (r"(?<![\w.])(?<!def )exec\(", "exec("),
    (r"\bmarshal\.loads?\(", "marshal.load"),
    (r"\byaml\.load\(", "yaml.load"),
    (r"\btorch\.load\((?![^)]*weights_only=True)", "torch.load without weights_only=True"),
]


def test_no_pickle_or_eval_on_any_load_path():
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, what in FORBIDDEN:
                if re.search(pattern, code):
                    hits.append(f"{path.relative_to(PACKAGE)}:{lineno}: {what}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_state_json_names_its_files(tmp_path):
    t = _trainer()
    t.model(cnncore.randn(2, 256)).sum().backward()
    t.optimizer.step()  # so there is optimizer state to store
    t.save_checkpoint(tmp_path)
    t.save_checkpoint(tmp_path)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["generation"] == "gen-000001"
    assert sorted(state["files"]) == ["model.safetensors", "optimizer.safetensors"]
    assert sorted(os.listdir(tmp_path)) == ["gen-000001", "state.json"]
