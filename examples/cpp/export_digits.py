"""Exports what the C++ examples need into DIR:

    digits.safetensors  the 8x8 digits upscaled to 32x32 (as `python -m cnncore train` does),
                        train_images/train_labels/test_images/test_labels
    lenet.cnn           a LeNet-5 trained briefly in Python (model.save)
    digit.pgm           one test image as an 8-bit PGM, and expected.txt: its class and the
                        logits Python computes for it (what `classify lenet.cnn digit.pgm` prints)

    python examples/cpp/export_digits.py DIR [--epochs N]
"""

import argparse
import os

import numpy as np

import cnncore
from cnncore import data, models, nn, optim


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    images, labels = data.load_digits()
    images = images.repeat(4, axis=2).repeat(4, axis=3)
    order = np.random.default_rng(0).permutation(len(images))
    test, train = order[:len(images) // 5], order[len(images) // 5:]
    cnncore.save({"train_images": images[train], "train_labels": labels[train],
                  "test_images": images[test], "test_labels": labels[test]},
                 os.path.join(args.dir, "digits.safetensors"))

    cnncore.manual_seed(0)
    model = models.lenet5()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x, y = images[train], labels[train]
    for _ in range(args.epochs):
        for b in range(0, len(x), 32):
            opt.zero_grad()
            loss = loss_fn(model(cnncore.tensor(x[b:b + 32])), cnncore.tensor(y[b:b + 32]))
            loss.backward()
            opt.step()
    model.eval()
    model.save(os.path.join(args.dir, "lenet.cnn"), cnncore.zeros(1, 1, 32, 32))

    pixels = np.round(images[test[0], 0] * 255).astype(np.uint8)
    with open(os.path.join(args.dir, "digit.pgm"), "wb") as f:
        f.write(b"P5\n32 32\n255\n" + pixels.tobytes())
    with cnncore.no_grad():
        logits = model(cnncore.tensor(pixels[None, None].astype(np.float32) / 255)).numpy()[0]
    with open(os.path.join(args.dir, "expected.txt"), "w") as f:
        f.write(f"class {int(logits.argmax())}\nlogits: {' '.join(f'{v:.7g}' for v in logits)}\n")
    with cnncore.no_grad():
        acc = (model(cnncore.tensor(images[test])).numpy().argmax(1) == labels[test]).mean()
    print(f"exported to {args.dir}: Python LeNet-5 test accuracy {acc:.4f}, "
          f"digit.pgm is a {labels[test[0]]}")


if __name__ == "__main__":
    main()
