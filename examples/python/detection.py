"""Train a small YOLO-style detector on synthetic shapes and report mAP@0.5.

    python examples/python/detection.py [--train 2000] [--epochs 6] [--threads 2]

Rectangles, discs and triangles on noisy backgrounds (cnncore.detection.SyntheticShapes,
64x64, 1-3 objects), an 8x8 grid with 3 anchors, the YOLO loss, Adam; evaluated on held-out
images with per-class NMS and VOC all-point mAP@0.5.
"""

import argparse
import time

import cnncore
from cnncore import data, optim
from cnncore import detection as D
from cnncore.train import Trainer


def evaluate(model, images, truth, anchors, batch=256):
    model.eval()
    dets = []
    with cnncore.no_grad():
        for i in range(0, len(images), batch):
            pred = model(cnncore.tensor(images[i:i + batch]))
            dets += D.decode(pred, anchors, conf_threshold=0.05, iou_threshold=0.45,
                             image_size=images.shape[-1])
    model.train()
    return D.mean_average_precision(dets, truth, iou_threshold=0.5)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--test", type=int, default=300)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        cnncore.set_num_threads(args.threads)
    cnncore.manual_seed(args.seed)
    anchors = D.DEFAULT_ANCHORS
    x_train, t_train, _ = D.SyntheticShapes(args.train, seed=args.seed).arrays(8, anchors)
    x_test, _, truth = D.SyntheticShapes(args.test, seed=args.seed + 1000).arrays(8, anchors)
    model = D.TinyYOLO(num_classes=3, anchors=anchors)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    loader = data.DataLoader(data.TensorDataset(cnncore.tensor(x_train), cnncore.tensor(t_train)),
                             batch_size=args.batch_size, shuffle=True, generator=args.seed)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr,
                                          total_steps=args.epochs * len(loader))
    trainer = Trainer(model, opt, lambda out, t: D.yolo_loss(out, t, anchors), scheduler=sched,
                      metrics=(), progress=False, verbose=False)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        history = trainer.fit(loader, epochs=epoch)
        result = evaluate(model, x_test, truth, anchors)
        print(f"epoch {epoch:2d}  loss {history[-1]['train_loss']:.3f}  mAP@0.5 "
              f"{result['map']:.3f}  {time.perf_counter() - start:.0f} s", flush=True)
    per_class = ", ".join(f"{D.SHAPE_CLASSES[c]} {ap:.3f}" for c, ap in result["ap"].items())
    print(f"test mAP@0.5 {result['map']:.3f} ({per_class}) after "
          f"{time.perf_counter() - start:.0f} s on {cnncore.get_num_threads()} threads")


if __name__ == "__main__":
    main()
