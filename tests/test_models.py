"""Model zoo: parameter counts equal torchvision's (the numbers the Model-zoo issue states),
structure, and that each network runs forward on a small input."""

from __future__ import annotations

import numpy as np
import pytest

import cnncore
import cnncore.models as M


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


PARAM_COUNTS = [
    ("lenet5", {}, 61706),
    ("alexnet", {}, 61100840),
    ("alexnet", {"lrn": True}, 61100840),  # LRN has no parameters
    ("resnet18", {}, 11689512),
    ("resnet34", {}, 21797672),
    ("resnet50", {}, 25557032),
    ("googlenet", {}, 6624904),
    ("mobilenet_v2", {}, 3504872),
    ("mobilenet_v1", {}, 4231976),
    ("resnet20", {}, 272474),
    ("vgg16", {}, 138357544),
    ("vgg11", {}, 132863336),
    ("vgg13", {}, 133047848),
    ("vgg19", {}, 143667240),
    ("resnet101", {}, 44549160),
    ("resnet152", {}, 60192808),
]


@pytest.mark.parametrize("name,kwargs,expected", PARAM_COUNTS)
def test_parameter_counts_match_torchvision(name, kwargs, expected):
    with cnncore.nn.init.skip_init():  # counting needs no random weights
        assert count(M.get_model(name, **kwargs)) == expected


def test_googlenet_aux_heads_and_vgg_bn_counts():
    # torchvision: googlenet(aux_logits=True) 13,004,888; vgg11_bn 132,868,840.
    with cnncore.nn.init.skip_init():
        assert count(M.googlenet(aux_logits=True)) == 13004888
        assert count(M.vgg11(batch_norm=True)) == 132868840


def test_skip_init_leaves_weights_alone_and_init_still_works_after():
    with cnncore.nn.init.skip_init():
        m = M.lenet5()
    cnncore.manual_seed(1)
    w = cnncore.empty(4, 5)
    cnncore.nn.init.normal_(w)
    assert np.abs(w.numpy()).max() > 0


def test_resnet_state_dict_keys_follow_torchvision():
    with cnncore.nn.init.skip_init():
        keys = list(M.resnet18().state_dict())
        keys50 = list(M.resnet50().state_dict())
    assert keys[:6] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                        "bn1.running_var", "bn1.num_batches_tracked"]
    assert "layer2.0.downsample.0.weight" in keys and "layer2.0.downsample.1.running_var" in keys
    assert "layer1.0.downsample.0.weight" not in keys
    assert keys[-2:] == ["fc.weight", "fc.bias"]
    assert "layer4.2.conv3.weight" in keys50


def test_mobilenet_v2_keys_and_separable_savings():
    with cnncore.nn.init.skip_init():
        keys = list(M.mobilenet_v2().state_dict())
    assert keys[0] == "features.0.0.weight"
    assert "features.1.conv.0.0.weight" in keys  # expand_ratio 1: no expansion conv
    assert "features.2.conv.0.0.weight" in keys and "features.2.conv.2.weight" in keys
    assert keys[-2:] == ["classifier.1.weight", "classifier.1.bias"]
    s = M.separable_savings(in_channels=3, out_channels=5, kernel_size=3, output_size=4)
    assert s["standard"] == 4 * 4 * 9 * 3 * 5 == 2160
    assert s["separable"] == 4 * 4 * 9 * 3 + 4 * 4 * 3 * 5 == 672
    assert s["ratio"] == pytest.approx(1 / 5 + 1 / 9)
    with pytest.raises(ValueError, match="kernel_size"):
        M.separable_savings(3, 5, 0, 4)


def test_lenet_summary_numbers_from_the_notes():
    # conv 5x5x3->8 (608), conv 5x5x8->16 (3216), FC 400->120 (48120), 120->84 (10164),
    # 84->10 (850): the notes' worked example is LeNet-5 on 32x32x3 with 8 first-layer filters.
    m = M.lenet5(in_channels=3)
    assert count(m.features[0]) == 3 * 6 * 25 + 6
    assert count(m.classifier[1]) == 48120 and count(m.classifier[3]) == 10164
    assert count(m.classifier[5]) == 850


def test_get_model_unknown_name():
    with pytest.raises(ValueError, match="unknown model 'resnet7'"):
        M.get_model("resnet7")
    with pytest.raises(ValueError, match="depth must be 6n"):
        M.CifarResNet(depth=21)


SMALL_FORWARD = [
    ("lenet5", lambda: M.lenet5(), (2, 1, 32, 32), (2, 10)),
    ("resnet20", lambda: M.resnet20(), (2, 3, 16, 16), (2, 10)),
    ("resnet18", lambda: M.resnet18(num_classes=7), (1, 3, 40, 36), (1, 7)),
    ("mobilenet_v2", lambda: M.mobilenet_v2(num_classes=5, width_mult=0.25), (1, 3, 33, 33),
     (1, 5)),
    ("mobilenet_v1", lambda: M.mobilenet_v1(num_classes=5, width_mult=0.25), (2, 3, 32, 32),
     (2, 5)),
    ("googlenet", lambda: M.googlenet(num_classes=4), (1, 3, 48, 48), (1, 4)),
    ("unet", lambda: M.unet(in_channels=1, num_classes=3, base_channels=4, depth=3),
     (2, 1, 20, 18), (2, 3, 20, 18)),
    ("alexnet_lrn", lambda: M.alexnet(num_classes=3, lrn=True), (1, 3, 67, 67), (1, 3)),
]


@pytest.mark.parametrize("name,make,shape,out_shape", SMALL_FORWARD,
                         ids=[s[0] for s in SMALL_FORWARD])
def test_forward_and_backward_run(name, make, shape, out_shape):
    cnncore.manual_seed(0)
    model = make()
    x = cnncore.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    y = model(x)
    assert tuple(y.shape) == out_shape
    assert np.isfinite(y.detach().numpy()).all()
    y.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    assert any(np.abs(g.numpy()).sum() > 0 for g in grads)
    model.eval()
    with cnncore.no_grad():
        assert tuple(model(x).shape) == out_shape


def test_multi_input_net_runs_three_branches():
    cnncore.manual_seed(0)
    net = M.MultiInputNet(num_classes=4, image_channels=3, vocab_size=50, embed_dim=8,
                          num_numeric=5, hidden=16)
    rng = np.random.default_rng(0)
    img = cnncore.tensor(rng.standard_normal((3, 3, 12, 12)).astype(np.float32))
    tokens = cnncore.tensor(rng.integers(0, 50, (3, 7)))
    numeric = cnncore.tensor(rng.standard_normal((3, 5)).astype(np.float32))
    out = net(img, tokens, numeric)
    assert tuple(out.shape) == (3, 4)
    out.sum().backward()
    assert net.embedding.weight.grad is not None
    assert np.abs(net.numeric[0].weight.grad.numpy()).sum() > 0


def test_case_study_networks_are_in_the_zoo():
    import cnncore
    from cnncore.detection import TinyYOLO
    from cnncore.localization import LocalizationNet
    assert {"tiny_yolo", "localization_net", "siamese", "style_vgg"} <= set(M.list_models())
    yolo = M.get_model("tiny_yolo", num_classes=2)
    assert isinstance(yolo, TinyYOLO) and isinstance(M.get_model("localization_net"),
                                                     LocalizationNet)
    # 3 anchors x (5 + 2 classes) channels on the 8x8 grid of a 64x64 image
    assert yolo(cnncore.randn(1, 3, 64, 64)).shape == (1, 21, 8, 8)
    net = M.get_model("siamese")
    assert isinstance(net, M.SiameseNet) and net(cnncore.randn(2, 1, 8, 8)).shape == (2, 32)
