"""Semantic segmentation with U-Net on synthetic shapes, reporting mean IoU; and the
transposed-convolution checkerboard artefact next to resize-then-conv, as a PNG.

    python examples/python/segmentation.py [--train 1200] [--epochs 8] [--unweighted] [--out seg_out]

Pixels are labelled background, rectangle, disc or triangle (cnncore.segmentation.
SyntheticMasks, 64x64). The model is cnncore.models.unet (transposed-conv upsampling and skip
concatenation) at a small width; the loss is per-pixel cross entropy.
"""

import argparse
import os
import time

import numpy as np

import cnncore
from cnncore import data, models, nn, optim
from cnncore.image import write_image
from cnncore.segmentation import SEGMENTATION_CLASSES, SyntheticMasks, mean_iou
from cnncore.train import Trainer


def checkerboard_demo(path):
    """Upsampling a flat map by 2: ConvTranspose2d(k=3, s=2) overlaps its kernel unevenly (some
    outputs get 1 tap, others 2 or 4), printing a grid pattern even with all-equal weights;
    nearest resize then a 3x3 conv covers every output alike."""
    flat = cnncore.ones((1, 1, 8, 8))
    deconv = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1, bias=False)
    resize_conv = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                nn.Conv2d(1, 1, 3, padding=1, bias=False))
    with cnncore.no_grad():
        deconv.weight.data = cnncore.ones((1, 1, 3, 3)) / 9.0
        resize_conv[1].weight.data = cnncore.ones((1, 1, 3, 3)) / 9.0
        a = deconv(flat).numpy()[0, 0]
        b = resize_conv(flat).numpy()[0, 0]
    inner = (slice(2, -2), slice(2, -2))  # away from the zero-padded border
    print(f"flat input upsampled x2: transposed conv spans {a[inner].min():.3f}.."
          f"{a[inner].max():.3f} (checkerboard), resize-then-conv {b[inner].min():.3f}.."
          f"{b[inner].max():.3f} (uniform)")
    tile = np.concatenate([a / a.max(), np.ones((16, 2)), b / b.max()], axis=1)
    write_image(path, np.kron(tile, np.ones((8, 8))))  # 8x bigger so the pattern is visible


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=1200)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--depth", type=int, default=3, help="U-Net levels (pooling steps)")
    ap.add_argument("--unweighted", action="store_true",
                    help="plain per-pixel cross entropy; by default each class is weighted by "
                    "median / its pixel frequency, since background is most of every image and "
                    "the small triangles are otherwise never learnt in 8 epochs")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="seg_out")
    args = ap.parse_args()
    if args.threads:
        cnncore.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    checkerboard_demo(os.path.join(args.out, "checkerboard.png"))
    cnncore.manual_seed(args.seed)
    x, y = SyntheticMasks(args.train, seed=args.seed).arrays()
    xv, yv = SyntheticMasks(args.test, seed=args.seed + 1000).arrays()
    classes = len(SEGMENTATION_CLASSES)
    model = models.unet(3, classes, base_channels=8, depth=args.depth)
    weight = None
    if not args.unweighted:
        freq = np.bincount(y.reshape(-1), minlength=classes) / y.size
        weight = cnncore.tensor((np.median(freq) / np.maximum(freq, 1e-6)).astype(np.float32))
    opt = optim.Adam(model.parameters(), lr=args.lr)
    loader = data.DataLoader(data.TensorDataset(cnncore.tensor(x), cnncore.tensor(y)),
                             batch_size=args.batch_size, shuffle=True, generator=args.seed)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr,
                                          total_steps=args.epochs * len(loader))
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(weight=weight), scheduler=sched,
                      metrics=(), progress=False, verbose=False)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        history = trainer.fit(loader, epochs=epoch)
        model.eval()
        with cnncore.no_grad():
            pred = np.concatenate([model(cnncore.tensor(xv[i:i + 100])).numpy().argmax(1)
                                   for i in range(0, len(xv), 100)])
        miou, per_class = mean_iou(pred, yv, classes)
        print(f"epoch {epoch}  loss {history[-1]['train_loss']:.4f}  mean IoU {miou:.3f}  (" +
              ", ".join(f"{n} {v:.3f}" for n, v in zip(SEGMENTATION_CLASSES, per_class)) +
              f")  {time.perf_counter() - start:.0f} s", flush=True)
    palette = np.array([[0, 0, 0], [230, 60, 60], [60, 200, 60], [70, 110, 240]], np.uint8)
    row = [np.concatenate([(xv[i].transpose(1, 2, 0) * 255).astype(np.uint8), palette[yv[i]],
                           palette[pred[i]]], axis=1) for i in range(4)]
    write_image(os.path.join(args.out, "predictions.png"), np.concatenate(row, axis=0))
    print(f"test mean IoU {miou:.3f}; images, truth and predictions in {args.out}/")


if __name__ == "__main__":
    main()
