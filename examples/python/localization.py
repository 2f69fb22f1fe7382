"""Train a localization + landmark network on synthetic shapes: class, box and 4 corner points.

    python examples/python/localization.py [--train 3000] [--epochs 15] [--threads 2]

One rotated rectangle or ellipse (or nothing) per 64x64 image (cnncore.localization.
SyntheticLocalization); the output is (pc, bx, by, bh, bw, class logits, 4 landmarks); reports
on held-out images the presence accuracy, class accuracy, mean box IoU and the mean landmark
error in pixels.
"""

import argparse
import time

import numpy as np

import cnncore
from cnncore import data, optim
from cnncore import localization as L
from cnncore.train import Trainer


def evaluate(model, x, t, labels, batch=256):
    model.eval()
    with cnncore.no_grad():
        outs = [model(cnncore.tensor(x[i:i + batch])).numpy() for i in range(0, len(x), batch)]
    model.train()
    p = L.decode_localization(np.concatenate(outs), 2, 4)
    present = t[:, 0] > 0.5
    size = x.shape[-1]
    iou = L.box_iou_cxcyhw(p["box"][present], t[present, 1:5])
    err = np.linalg.norm(p["landmarks"][present] - t[present, 5:].reshape(-1, 4, 2), axis=2)
    return {"pc_accuracy": float(((p["pc"] > 0.5) == present).mean()),
            "class_accuracy": float((p["label"][present] == labels[present]).mean()),
            "mean_iou": float(iou.mean()), "iou>=0.5": float((iou >= 0.5).mean()),
            "landmark_error_px": float(err.mean() * size)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        cnncore.set_num_threads(args.threads)
    cnncore.manual_seed(args.seed)
    x, t, lab = L.SyntheticLocalization(args.train, seed=args.seed).arrays()
    xv, tv, labv = L.SyntheticLocalization(args.test, seed=args.seed + 1000).arrays()
    model = L.LocalizationNet(num_classes=2, num_landmarks=4)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    # The label rides as the target's last column, so one DataLoader batch holds both.
    packed = np.concatenate([t, lab[:, None].astype(np.float32)], axis=1)
    loader = data.DataLoader(data.TensorDataset(cnncore.tensor(x), cnncore.tensor(packed)),
                             batch_size=args.batch_size, shuffle=True, generator=args.seed)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr,
                                          total_steps=args.epochs * len(loader))

    def loss(out, y):
        y = y.numpy()
        # Coordinates are image fractions, so their squared errors are small next to the
        # cross entropies: weighted up, as YOLO's lambda_coord does.
        return L.localization_loss(out, y[:, :-1], y[:, -1].astype(np.int64), 2, 4,
                                   box_weight=10.0, landmark_weight=10.0)

    trainer = Trainer(model, opt, loss, scheduler=sched, metrics=(), progress=False,
                      verbose=False)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        history = trainer.fit(loader, epochs=epoch)
        m = evaluate(model, xv, tv, labv)
        print(f"epoch {epoch:2d}  loss {history[-1]['train_loss']:.4f}  " + "  ".join(
            f"{k} {v:.3f}" for k, v in m.items()) + f"  {time.perf_counter() - start:.0f} s",
            flush=True)

if __name__ == "__main__":
    main()
