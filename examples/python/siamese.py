"""One-shot recognition of classes the network never saw (the notes' Siamese / face-verification
case study), on synthetic pen-stroke glyphs (cnncore.data.SyntheticGlyphs).

A Siamese embedding network is trained with semi-hard triplet mining (TripletMarginLoss on the
mined triplets) on --train-classes glyph classes. A further --test-classes classes, with class ids
the training set never holds, are used only at the end: N-way one-shot episodes (one support
image per class, the query takes the label of the nearest support embedding), and same/different
verification of pairs with the distance threshold chosen on held-in images of the training
classes. Every figure is given next to the raw-pixel nearest-neighbour baseline on the very same
episodes and pairs, as a mean over episodes with its spread.

Why glyphs and not the digits: with 10 digit classes, training on seven leaves an embedding that
knows those seven and generalises worse than raw pixels to the other three; a metric that
carries to new classes needs many training classes (Omniglot has 964; this has as many as asked).

    python examples/python/siamese.py [--steps 500] [--train-classes 400] [--seed 0]
"""

import argparse
import time

import numpy as np

import cnncore
from cnncore import data, models, optim

UNSEEN_ID_OFFSET = 1_000_000   # test class ids start here: disjoint from every training id

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=500)
parser.add_argument("--train-classes", type=int, default=400)
parser.add_argument("--samples-per-class", type=int, default=12)
parser.add_argument("--test-classes", type=int, default=100)
parser.add_argument("--image-size", type=int, default=16)
parser.add_argument("--width", type=int, default=16, help="EmbeddingNet width")
parser.add_argument("--classes-per-batch", type=int, default=16)
parser.add_argument("--samples-per-batch-class", type=int, default=4)
parser.add_argument("--margin", type=float, default=0.3)
parser.add_argument("--lr", type=float, default=3e-3)
parser.add_argument("--episodes", type=int, default=1000)
parser.add_argument("--ways", default="5,20")
parser.add_argument("--queries-per-class", type=int, default=5)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--threads", type=int, default=0, help="0: cnncore's default")
args = parser.parse_args()
if args.threads:
    cnncore.set_num_threads(args.threads)

cnncore.manual_seed(args.seed)
start = time.perf_counter()
seen = data.SyntheticGlyphs(args.train_classes, args.samples_per_class, args.image_size,
                            seed=args.seed)
unseen = data.SyntheticGlyphs(range(UNSEEN_ID_OFFSET, UNSEEN_ID_OFFSET + args.test_classes),
                              args.samples_per_class, args.image_size, seed=args.seed)
x_seen, y_seen = seen.arrays()
x_test, y_test = unseen.arrays()
assert not np.isin(y_test, y_seen).any()
# Of each training class, the last quarter of its images is held in: it picks the threshold.
held = np.arange(len(y_seen)) % args.samples_per_class >= (3 * args.samples_per_class) // 4
train_idx, held_idx = np.flatnonzero(~held), np.flatnonzero(held)
mean, std = float(x_seen[train_idx].mean()), float(x_seen[train_idx].std())
print(f"{args.train_classes} training classes ({len(train_idx)} images), {args.test_classes} "
      f"unseen classes ({len(y_test)} images), {args.image_size}x{args.image_size}; drawn in "
      f"{time.perf_counter() - start:.1f} s")

ways = [int(w) for w in args.ways.split(",")]
episodes = {n: models.one_shot_episodes(y_test, n, args.episodes,
                                        queries_per_class=args.queries_per_class,
                                        generator=[args.seed, n]) for n in ways}
held_pairs = models.verification_pairs(y_seen[held_idx], 4000, generator=[args.seed, 1])
test_pairs = models.verification_pairs(y_test, 4000, generator=[args.seed, 2])


def report(tag, emb_held, emb_test):
    """One line per N-way setting and one for verification; returns {name: mean}."""
    out = {}
    for n in ways:
        acc = models.episode_accuracies(emb_test, y_test, episodes[n])
        half = 1.96 * acc.std(ddof=1) / np.sqrt(len(acc))
        print(f"  {tag}: {n}-way one-shot accuracy {acc.mean():.3f} +- {half:.3f} (95% CI; "
              f"per-episode std {acc.std(ddof=1):.3f}, {len(acc)} episodes)")
        out[n] = acc
    hi, hj, hs = held_pairs
    t, held_acc = models.choose_threshold(np.linalg.norm(emb_held[hi] - emb_held[hj], axis=1), hs)
    ti, tj, ts = test_pairs
    correct = (np.linalg.norm(emb_test[ti] - emb_test[tj], axis=1) <= t) == ts
    print(f"  {tag}: verification accuracy {correct.mean():.3f} on {len(ts)} unseen pairs at "
          f"threshold {t:.3f} (chosen on held-in pairs: {held_acc:.3f})")
    out["verify"] = correct
    return out


def unit_pixels(x):
    flat = (x.reshape(len(x), -1) - mean) / std
    return flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)


def normalized(x):
    return (x - mean) / std


print("raw pixels (nearest neighbour on unit-length standardised pixels, no network):")
base = report("pixels", unit_pixels(x_seen[held_idx]), unit_pixels(x_test))

net = models.SiameseNet(models.EmbeddingNet(in_channels=1, embedding_dim=32, width=args.width))
print("untrained network:")
report("untrained", models.embed(net, normalized(x_seen[held_idx])),
       models.embed(net, normalized(x_test)))

loss_fn = models.SemiHardTripletLoss(margin=args.margin)
opt = optim.Adam(net.parameters(), lr=args.lr)
sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps)
x_train, y_train = normalized(x_seen[train_idx]), y_seen[train_idx]
start = time.perf_counter()
for step, batch in enumerate(models.balanced_batches(
        y_train, args.classes_per_batch, args.samples_per_batch_class, args.steps,
        generator=args.seed)):
    opt.zero_grad()
    loss = loss_fn(net(cnncore.tensor(x_train[batch])), y_train[batch])
    loss.backward()
    opt.step()
    sched.step()
    if step % 100 == 0 or step == args.steps - 1:
        print(f"step {step:4d}  semi-hard triplet loss {loss.item():.4f}")
print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s "
      f"({cnncore.get_num_threads()} threads)")
print("trained network:")
learned = report("trained", models.embed(net, normalized(x_seen[held_idx])),
                 models.embed(net, normalized(x_test)))

# Paired comparison: the same episodes, so the per-episode difference has a small spread.
for n in ways:
    diff = learned[n] - base[n]
    half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff))
    print(f"{n}-way one-shot: trained {learned[n].mean():.3f} vs pixels {base[n].mean():.3f}, "
          f"gain {diff.mean():+.3f} +- {half:.3f} (95% CI, paired over {len(diff)} episodes)")
print(f"verification: trained {learned['verify'].mean():.3f} vs pixels "
      f"{base['verify'].mean():.3f}")
