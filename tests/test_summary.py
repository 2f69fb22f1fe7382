"""summary() and conv_output_shape(): the notes' worked numbers."""

from __future__ import annotations

import pytest

import cnncore
import cnncore.nn as nn
from cnncore import models


def notes_network():
    # The notes' CNN example: conv 5x5x3 -> 8, max pool, conv 5x5x8 -> 16, max pool, FC 120,
    # FC 84, softmax 10, on 32x32x3 images.
    return nn.Sequential(
        nn.Conv2d(3, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10), nn.Softmax(dim=1))


def test_summary_reproduces_the_notes_parameter_counts(capsys):
    s = cnncore.summary(notes_network(), (3, 32, 32))
    printed = capsys.readouterr().out
    with_params = [(li.type, li.params) for li in s.layers if li.params]
    assert with_params == [("Conv2d", 608), ("Conv2d", 3216), ("Linear", 48120),
                           ("Linear", 10164), ("Linear", 850)]
    shapes = [li.output_shape for li in s.layers]
    assert shapes[0] == (1, 8, 28, 28) and shapes[2] == (1, 8, 14, 14)
    assert shapes[5] == (1, 16, 5, 5) and shapes[-1] == (1, 10)
    assert s.total_params == 608 + 3216 + 48120 + 10164 + 850 == s.trainable_params
    assert s.layers[0].macs == 28 * 28 * 8 * 75
    assert s.layers[7].macs == 400 * 120
    assert "Total params: 62,958" in printed and "608" in printed


def test_summary_counts_frozen_params_and_restores_mode():
    m = models.lenet5()
    for p in m.features.parameters():
        p.requires_grad_(False)
    m.train()
    s = cnncore.summary(m, (1, 32, 32), print_table=False)
    assert s.total_params == 61706
    assert s.non_trainable_params == 156 + 2416
    assert m.training


def test_summary_multi_input_and_errors():
    net = models.MultiInputNet(num_classes=3, image_channels=1, vocab_size=20, embed_dim=4,
                               num_numeric=2, hidden=8)
    import numpy as np
    s = cnncore.summary(net, input_data=(cnncore.zeros(2, 1, 8, 8),
                                         cnncore.tensor(np.zeros((2, 5), np.int64)),
                                         cnncore.zeros(2, 2)), print_table=False)
    assert s.layers[-1].output_shape == (2, 3)
    with pytest.raises(ValueError, match="input_size"):
        cnncore.summary(models.lenet5(), (1, 32, -3))
    with pytest.raises(TypeError, match="nn.Module"):
        cnncore.summary("lenet", (1, 32, 32))


def test_conv_output_shape_explains_the_arithmetic():
    out = cnncore.conv_output_shape((3, 32, 32), kernel_size=5, out_channels=8)
    assert out == (8, 28, 28)
    assert "(32 + 2*0 - 5) / 1" in out.explain()
    assert cnncore.conv_output_shape((6, 6), 3, stride=2, padding=1) == (3, 3)
    assert cnncore.conv_output_shape((7, 7), 3, dilation=2) == (3, 3)
    same = cnncore.conv_output_shape((5, 6), 4, stride=2, padding="same")
    assert same == (3, 3)
    assert "extra pixel at the end" in same.explain()
    with pytest.raises(ValueError, match="larger than the padded input"):
        cnncore.conv_output_shape((3, 3), 5)
    with pytest.raises(ValueError, match="input_shape"):
        cnncore.conv_output_shape((3, 0, 4), 1)
