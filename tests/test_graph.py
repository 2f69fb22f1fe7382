"""cnncore.graph.trace: what it records, the JSON round trip and its errors."""

import json

import numpy as np
import pytest

import cnncore as cc
from cnncore import graph, models, nn


def _covers_state_dict(model, g):
    keys = {k for n in g.nodes for k in n.params.values()}
    return keys == set(model.state_dict())


def test_lenet_nodes_attrs_params_and_shapes():
    m = models.lenet5()
    g = graph.trace(m, cc.randn(2, 1, 32, 32))
    assert g.inputs == ["x"] and g.outputs == ["classifier.5"]
    assert [n.op for n in g.nodes][:3] == ["Conv2d", "ReLU", "AvgPool2d"]
    conv = g.nodes[0]
    assert conv.kind == "module" and conv.module == "features.0"
    assert conv.attrs["out_channels"] == 6 and conv.attrs["kernel_size"] == [5, 5]
    assert conv.attrs["bias"] is True
    assert conv.params == {"weight": "features.0.weight", "bias": "features.0.bias"}
    assert g.shapes["features.0"] == (2, 6, 28, 28)
    assert g.shapes["classifier.5"] == (2, 10)
    assert _covers_state_dict(m, g)


def test_resnet_records_residual_adds_and_shared_relu_gets_unique_names():
    m = models.resnet18(num_classes=5)
    g = graph.trace(m, cc.randn(1, 3, 32, 32))
    adds = [n for n in g.nodes if n.op == "add"]
    assert len(adds) == 8 and all(n.kind == "function" and len(n.inputs) == 2 for n in adds)
    names = [n.name for n in g.nodes]
    assert len(names) == len(set(names))
    relus = [n for n in g.nodes if n.module == "layer1.0.relu"]
    assert len(relus) == 2 and relus[0].name != relus[1].name
    assert any(n.op == "flatten" and n.attrs == {"start_dim": 1, "end_dim": -1} for n in g.nodes)
    assert _covers_state_dict(m, g)  # BatchNorm buffers included


def test_unet_cat_and_transposed_conv():
    m = models.unet(base_channels=4, depth=2)
    g = graph.trace(m, cc.randn(1, 1, 12, 12))
    cats = [n for n in g.nodes if n.op == "cat"]
    assert len(cats) == 2 and all(n.attrs == {"dim": 1} and len(n.inputs) == 2 for n in cats)
    assert sum(n.op == "ConvTranspose2d" for n in g.nodes) == 2
    assert g.shapes[g.outputs[0]] == (1, 2, 12, 12)


def test_scalar_binary_ops_and_functional_calls_record_their_arguments():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            y = 2.0 - self.conv(x) * 0.5
            return cc.functional.adaptive_avg_pool2d(y, (1, 1)).relu().reshape(-1, 4)

    g = graph.trace(Net(), cc.randn(2, 3, 8, 8))
    ops = [(n.op, n.attrs) for n in g.nodes]
    assert ops[1] == ("mul", {"scalar": 0.5})
    assert ops[2] == ("sub", {"scalar": 2.0, "scalar_first": True})
    assert ops[3] == ("adaptive_avg_pool2d", {"output_size": [1, 1]})
    assert ops[4][0] == "relu" and ops[5] == ("reshape", {"shape": [-1, 4]})
    assert g.shapes[g.outputs[0]] == (2, 4)


def test_json_round_trip():
    g = graph.trace(models.mobilenet_v2(num_classes=3, width_mult=0.25), cc.randn(1, 3, 32, 32))
    d = json.loads(json.dumps(g.to_dict()))
    g2 = graph.Graph.from_dict(d)
    assert g2.to_dict() == g.to_dict()
    assert [n.name for n in g2.nodes] == [n.name for n in g.nodes]


def test_from_dict_rejects_other_formats():
    with pytest.raises(ValueError, match="not a cnncore graph"):
        graph.Graph.from_dict({"nodes": []})
    with pytest.raises(ValueError, match="version 99"):
        graph.Graph.from_dict({"format": "cnncore.graph", "version": 99})
    with pytest.raises(ValueError, match="malformed"):
        graph.Graph.from_dict({"format": "cnncore.graph", "version": 1, "nodes": [{}]})


def test_unrecorded_op_names_the_op_and_points_at_cnncore_save():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x.exp())

    with pytest.raises(graph.TraceError, match=r"Linear 'fc'.*ExpBackward.*cnncore\.save"):
        graph.trace(Custom(), cc.randn(2, 4))


def test_parameter_used_directly_is_an_error():
    class Direct(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(cc.randn(4))

        def forward(self, x):
            return x + self.w

    with pytest.raises(graph.TraceError, match="op add .*not computed from the model's inputs"):
        graph.trace(Direct(), cc.randn(2, 4))


def test_trace_leaves_the_model_unchanged():
    m = models.resnet20()
    m.train()
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    graph.trace(m, cc.randn(2, 3, 32, 32))
    assert all(mod.training for mod in m.modules())
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
    # and the patches are gone: ops run normally afterwards
    assert type(cc.Tensor.__add__).__name__ == "function"
    assert nn.Module.__call__.__qualname__ == "Module.__call__"


def test_bad_arguments():
    with pytest.raises(TypeError, match="trace: model must be a cnncore.nn.Module"):
        graph.trace(object(), cc.randn(1))
    with pytest.raises(ValueError, match="at least one example input"):
        graph.trace(models.lenet5())
