"""io.load_torch(path, model): PyTorch weights mapped onto zoo models by key, with the report
of missing, unexpected and shape-mismatched keys."""

import numpy as np
import pytest

import cnncore
from cnncore import io, models


def _torch_file(tmp_path, state, name="w.pth"):
    torch = pytest.importorskip("torch")
    path = tmp_path / name
    torch.save({k: torch.from_numpy(np.array(v.numpy())) for k, v in state.items()}, path)
    return path


def test_zoo_model_loads_torch_weights_with_an_empty_report(tmp_path):
    cnncore.manual_seed(0)
    src = models.get_model("resnet20", num_classes=10)
    path = _torch_file(tmp_path, src.state_dict())
    cnncore.manual_seed(1)
    dst = models.get_model("resnet20", num_classes=10)
    report = io.load_torch(path, dst)
    assert not any(report) and str(report) == "all keys matched"
    for k, v in src.state_dict().items():
        np.testing.assert_array_equal(dst.state_dict()[k].numpy(), v.numpy())


def test_report_names_missing_unexpected_and_mismatched_keys(tmp_path):
    src = models.lenet5(num_classes=10).state_dict()
    src["extra.weight"] = cnncore.zeros(3)
    del src["features.0.bias"]
    path = _torch_file(tmp_path, src)
    dst = models.lenet5(num_classes=7)
    before = {k: v.numpy().copy() for k, v in dst.state_dict().items()}
    with pytest.raises(RuntimeError) as e:
        io.load_torch(path, dst)
    msg = str(e.value)
    assert "features.0.bias" in msg and "extra.weight" in msg
    assert "classifier.5.weight (10, 84) in the file vs (7, 84) in the model" in msg
    for k, v in dst.state_dict().items():  # a strict failure writes nothing
        np.testing.assert_array_equal(v.numpy(), before[k])
    report = io.load_torch(path, dst, strict=False)
    assert report.missing_keys == ["features.0.bias"]
    assert report.unexpected_keys == ["extra.weight"]
    assert {k for k, _, _ in report.mismatched_keys} == {"classifier.5.weight",
                                                         "classifier.5.bias"}
    np.testing.assert_array_equal(dst.state_dict()["features.0.weight"].numpy(),
                                  src["features.0.weight"].numpy())
    np.testing.assert_array_equal(dst.state_dict()["classifier.5.bias"].numpy(),
                                  before["classifier.5.bias"])


def test_ddp_prefix_and_safetensors_without_torch(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    src = models.lenet5().state_dict()
    path = tmp_path / "w.safetensors"
    st.save_file({"module." + k: np.array(v.numpy()) for k, v in src.items()}, str(path))
    dst = models.lenet5()
    assert not any(io.load_torch(path, dst))
    np.testing.assert_array_equal(dst.state_dict()["classifier.1.weight"].numpy(),
                                  src["classifier.1.weight"].numpy())
