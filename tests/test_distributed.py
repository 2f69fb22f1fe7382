"""cnncore.distributed: the sampler's arithmetic here, and the 2-rank equivalence run under
`mpiexec -n 2` on loopback (tests/mpi_ddp_worker.py), skipped without mpi4py or mpiexec."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import cnncore
from cnncore import distributed, nn
from helpers import child_env

HERE = os.path.dirname(os.path.abspath(__file__))


def _mpiexec():
    pytest.importorskip("mpi4py", reason="cnncore.distributed needs mpi4py (extra 'dist')")
    # The mpich wheel puts mpiexec beside the interpreter, which may not be on PATH.
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    path = beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")
    if path is None:
        pytest.skip("no mpiexec (pip install mpich)")
    return path


def _run_mpi(args, timeout=180):
    env = child_env(OMP_NUM_THREADS="1")
    for var in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE"):  # not nested in a launch
        env.pop(var, None)
    proc = subprocess.run([_mpiexec(), "-n", "2", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def mpi_result():
    out = _run_mpi([sys.executable, os.path.join(HERE, "mpi_ddp_worker.py")])
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    assert line, out
    return json.loads(line[0][len("RESULT "):])


@pytest.mark.parametrize("case", ["mlp_sgd", "mlp_adam", "bn_sgd", "bn_adam"])
def test_two_ranks_match_one_process_on_twice_the_batch(mpi_result, case):
    # bn_*: SyncBatchNorm on B per rank against BatchNorm2d on 2B; SGD has momentum and decay.
    assert mpi_result["world"] == 2
    assert mpi_result[case] < 1e-5, mpi_result


def test_gradients_went_through_several_buckets_started_during_backward(mpi_result):
    assert mpi_result["buckets"] >= 2
    assert mpi_result["overlapped"], mpi_result


def test_plain_batchnorm_keeps_per_rank_statistics(mpi_result):
    assert mpi_result["bn_per_rank_sgd"] > 1e-4, mpi_result


def test_sync_batchnorm_forward_backward_match_whole_batch(mpi_result):
    assert mpi_result["sync_bn"] < 1e-4, mpi_result


def test_trainer_reduces_metrics_and_rank0_checkpoints(mpi_result):
    assert mpi_result["eval_loss_diff"] < 1e-6
    assert mpi_result["eval_acc_diff"] == 0.0
    assert mpi_result["train_loss_spread"] == 0.0
    assert mpi_result["saves"] == [1, 0]


def test_cli_train_under_mpiexec(tmp_path):
    metrics = tmp_path / "m.json"
    ckpt = tmp_path / "ckpt"
    out = _run_mpi([sys.executable, "-m", "cnncore", "train", "--epochs", "1", "--threads", "1",
                    "--batch-size", "32", "--metrics-json", str(metrics),
                    "--checkpoint-dir", str(ckpt)])
    m = json.loads(metrics.read_text())
    assert m["world_size"] == 2
    assert m["test_accuracy"] > 0.3  # learning (chance is 0.1) after one short epoch
    assert out.count("test accuracy") == 1  # rank 0 reports, rank 1 stays quiet
    # The checkpoint holds the bare model's keys: it loads without the wrapper.
    from cnncore.train import read_checkpoint_state
    weights = cnncore.load(read_checkpoint_state(ckpt)[1]["model.safetensors"])
    assert not any(k.startswith("module.") for k in weights)


# ---- DistributedSampler (no MPI needed) ---------------------------------------------------------
@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (9, 3, False),
                                                  (2, 4, False), (11, 4, True)])
def test_sampler_matches_torch_without_shuffle(n, replicas, drop_last):
    torch_data = pytest.importorskip("torch.utils.data")
    data = list(range(n))
    for r in range(replicas):
        ours = distributed.DistributedSampler(data, replicas, r, shuffle=False,
                                              drop_last=drop_last)
        theirs = torch_data.DistributedSampler(data, replicas, r, shuffle=False,
                                               drop_last=drop_last)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)


def test_sampler_shuffle_shards_one_permutation_per_epoch():
    data = list(range(23))
    shards = [distributed.DistributedSampler(data, 3, r, seed=4) for r in range(3)]
    epoch0 = [list(s) for s in shards]
    assert len(set(sum(epoch0, []))) == 23 and all(len(e) == 8 for e in epoch0)
    assert [list(s) for s in shards] == epoch0  # same epoch, same order
    for s in shards:
        s.set_epoch(1)
    epoch1 = [list(s) for s in shards]
    assert epoch1 != epoch0 and len(set(sum(epoch1, []))) == 23


def test_sampler_errors():
    with pytest.raises(ValueError, match="Invalid rank 3"):
        distributed.DistributedSampler(range(5), num_replicas=3, rank=3)
    with pytest.raises(TypeError, match="num_replicas must be an int"):
        distributed.DistributedSampler(range(5), num_replicas=2.0, rank=0)


def test_launch_detection(monkeypatch):
    for var in distributed._LAUNCH_SIZE_VARS:
        monkeypatch.delenv(var, raising=False)
    assert not distributed.launched_by_mpi()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert distributed.launched_by_mpi()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")
    assert not distributed.launched_by_mpi()


def test_single_process_paths_need_no_mpi():
    assert not distributed.is_initialized() or distributed.world_size() >= 1
    # SyncBatchNorm outside a multi-rank job is BatchNorm.
    cnncore.manual_seed(0)
    x = cnncore.randn(4, 3, 5, 5)
    ref, sbn = nn.BatchNorm2d(3), distributed.SyncBatchNorm(3)
    np.testing.assert_allclose(sbn(x).detach().numpy(), ref(x).detach().numpy(), atol=1e-6)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    conv = distributed.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(conv[1], distributed.SyncBatchNorm)
    assert list(conv.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                       "1.running_mean", "1.running_var",
                                       "1.num_batches_tracked"]


def test_post_accumulate_grad_hook_runs_per_accumulation():
    w = cnncore.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    h = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    ((w * 3).sum() + (w * w).sum()).backward()  # w reached by three edges
    assert len(seen) == 3
    np.testing.assert_allclose(seen[-1], [5.0, 7.0])
    h.remove()
    (w * 1).sum().backward()
    assert len(seen) == 3


def test_import_cnncore_loads_neither_mpi4py_nor_onnx():
    code = ("import sys, cnncore; cnncore.distributed.DistributedSampler; cnncore.onnx.load; "
            "print(sorted(m for m in ('mpi4py', 'onnx', 'onnxruntime') if m in sys.modules))")
    env = child_env()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env, check=True)
    assert out.stdout.strip() == "[]"
