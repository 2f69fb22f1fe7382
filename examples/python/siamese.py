"""One-shot recognition of digits the network never saw (the notes' Siamese / face-verification
case study, on the bundled 8x8 digits).

A Siamese embedding network is trained with semi-hard triplet mining on the digits 0-6 only. The
digits 7, 8 and 9 are held out of training entirely; afterwards each is recognised from ONE
example (N-way one-shot: the query gets the label of the nearest support embedding), and pairs of
them are verified same/different with a distance threshold chosen on held-in pairs of 0-6.

    python examples/python/siamese.py [--steps 400] [--seed 0]
"""

import argparse
import time

import numpy as np

import cnncore
from cnncore import data, models, optim

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=400)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--margin", type=float, default=0.5)
parser.add_argument("--episodes", type=int, default=200)
args = parser.parse_args()

cnncore.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)
images, labels = data.load_digits()
images = (images - images.mean()) / images.std()
unseen_classes = np.array([7, 8, 9])
seen = ~np.isin(labels, unseen_classes)

# Seen digits: 80% train, 20% held in (picks the verification threshold). Unseen: test only.
seen_idx = rng.permutation(np.flatnonzero(seen))
train_idx, held_idx = seen_idx[: int(0.8 * len(seen_idx))], seen_idx[int(0.8 * len(seen_idx)):]
test_idx = np.flatnonzero(~seen)

net = models.SiameseNet(models.EmbeddingNet(in_channels=1, embedding_dim=32))
loss_fn = models.SemiHardTripletLoss(margin=args.margin)
opt = optim.Adam(net.parameters(), lr=3e-3)
sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.steps)


def pairs(idx, n, generator):
    """n random pairs from idx, half same-class, half different: (i, j, same)."""
    g = np.random.default_rng(generator)
    y = labels[idx]
    i = g.choice(len(idx), n)
    j = np.empty(n, np.int64)
    for k in range(n):
        want_same = k % 2 == 0
        cands = np.flatnonzero((y == y[i[k]]) == want_same)
        cands = cands[cands != i[k]]
        j[k] = g.choice(cands)
    return idx[i], idx[j], (labels[idx[i]] == labels[idx[j]])


def one_shot(emb_of, idx, episodes, generator):
    """Mean accuracy over episodes of |classes|-way one-shot: one random support image per class,
    every other image of those classes a query."""
    g = np.random.default_rng(generator)
    y = labels[idx]
    accs = []
    for _ in range(episodes):
        support = np.array([g.choice(np.flatnonzero(y == c)) for c in np.unique(y)])
        query = np.setdiff1d(np.arange(len(idx)), support)
        accs.append(models.one_shot_accuracy(emb_of[support], y[support], emb_of[query],
                                             y[query]))
    return float(np.mean(accs))


def report(tag, emb):
    """emb: embeddings of all 1,797 images, by index."""
    e_test = emb[test_idx]
    acc_unseen = one_shot(e_test, test_idx, args.episodes, 1)
    hi, hj, hs = pairs(held_idx, 2000, 2)
    threshold, held_acc = models.choose_threshold(
        np.linalg.norm(emb[hi] - emb[hj], axis=1), hs)
    ti, tj, ts = pairs(test_idx, 2000, 3)
    verify_acc = np.mean((np.linalg.norm(emb[ti] - emb[tj], axis=1) <= threshold) == ts)
    print(f"{tag}: 3-way one-shot accuracy on unseen digits 7/8/9 {acc_unseen:.3f}; "
          f"verification threshold {threshold:.3f} (held-in accuracy {held_acc:.3f}) gives "
          f"{verify_acc:.3f} on unseen pairs")
    return acc_unseen


pixels = images.reshape(len(images), -1)
report("raw pixels (no network)", pixels / np.linalg.norm(pixels, axis=1, keepdims=True))
report("untrained network", models.embed(net, images))

start = time.perf_counter()
x_all = images
for step, batch in enumerate(models.balanced_batches(labels[train_idx], classes_per_batch=7,
                                                     samples_per_class=8,
                                                     num_batches=args.steps,
                                                     generator=args.seed)):
    idx = train_idx[batch]
    opt.zero_grad()
    loss = loss_fn(net(cnncore.tensor(x_all[idx])), labels[idx])
    loss.backward()
    opt.step()
    sched.step()
    if step % 50 == 0 or step == args.steps - 1:
        print(f"step {step:4d}  semi-hard triplet loss {loss.item():.4f}")
print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s "
      f"({cnncore.get_num_threads()} threads)")
report("trained network", models.embed(net, images))
