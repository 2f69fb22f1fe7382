"""Siamese networks for one-shot verification (the notes' face-recognition case study).

One embedding network maps every image to a point on the unit sphere; two images are "the same"
when their embeddings are closer than a threshold. Trained with a contrastive loss on pairs
(Hadsell, Chopra & LeCun, 2006) or a triplet loss on mined triplets (FaceNet, Schroff et al.,
2015), it then recognises classes it never saw from one example each.

    net = SiameseNet(EmbeddingNet(in_channels=1, embedding_dim=32))
    emb = net(images)                                        # (N, 32), unit length
    loss = SemiHardTripletLoss(margin=0.5)(emb, labels)      # mines its triplets in the batch
    t, acc = choose_threshold(distances, same)               # on held-in pairs
    one_shot_accuracy(support_emb, support_labels, query_emb, query_labels)
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..tensor import Tensor, no_grad, tensor

__all__ = ["EmbeddingNet", "SiameseNet", "contrastive_loss", "ContrastiveLoss",
           "distance_matrix", "semi_hard_triplets", "SemiHardTripletLoss", "balanced_batches",
           "choose_threshold", "one_shot_accuracy", "one_shot_episodes", "episode_accuracies",
           "verification_pairs", "embed"]


class EmbeddingNet(nn.Module):
    """A small CNN: three conv-BN-ReLU stages (a 2x2 max pool after the first two), global
    average pooling and a linear map to embedding_dim, L2-normalised when normalize=True. Works
    on any image of at least 4x4 (the 8x8 digits upward)."""

    def __init__(self, in_channels: int = 1, embedding_dim: int = 32, width: int = 32,
                 normalize: bool = True):
        super().__init__()
        for arg, v in (("in_channels", in_channels), ("embedding_dim", embedding_dim),
                       ("width", width)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"EmbeddingNet: {arg} must be a positive int, but got {v!r}")

        def stage(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]

        self.features = nn.Sequential(*stage(in_channels, width), nn.MaxPool2d(2),
                                      *stage(width, 2 * width), nn.MaxPool2d(2),
                                      *stage(2 * width, 2 * width), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(2 * width, embedding_dim)
        self.normalize = normalize

    def forward(self, x):
        e = self.fc(self.features(x).flatten(1))
        return F.normalize(e, dim=-1) if self.normalize else e


class SiameseNet(nn.Module):
    """The twin network: one embedding_net with shared weights applied to both inputs.
    net(x) -> embeddings; net(x1, x2) -> (e1, e2); net.distance(x1, x2) -> Euclidean distances."""

    def __init__(self, embedding_net: nn.Module | None = None):
        super().__init__()
        self.embedding_net = EmbeddingNet() if embedding_net is None else embedding_net

    def forward(self, x1, x2=None):
        if x2 is None:
            return self.embedding_net(x1)
        return self.embedding_net(x1), self.embedding_net(x2)

    def distance(self, x1, x2):
        e1, e2 = self(x1, x2)
        return F.pairwise_distance(e1, e2)


def contrastive_loss(x1, x2, target, margin: float = 1.0, eps: float = 1e-6,
                     reduction: str = "mean"):
    """Hadsell et al.'s loss on embedding pairs (N, D): with d = ||x1 - x2 + eps||_2,
    0.5 d^2 where target is 1 (same class) and 0.5 max(margin - d, 0)^2 where it is 0, so
    similar pairs are pulled together and dissimilar ones pushed at least margin apart."""
    op = "contrastive_loss"
    if not isinstance(x1, Tensor) or not isinstance(x2, Tensor):
        raise TypeError(f"{op}: x1 and x2 must be Tensors, but got {type(x1).__name__} and "
                        f"{type(x2).__name__}")
    if x1.shape != x2.shape or x1.ndim != 2:
        raise ValueError(f"{op}: x1 and x2 must be 2-D (N, D) of the same shape, but got "
                         f"{x1.shape} and {x2.shape}")
    t = np.asarray(target.detach().numpy() if isinstance(target, Tensor) else target)
    if t.shape != (x1.shape[0],) or not np.isin(t, (0, 1)).all():
        raise ValueError(f"{op}: target must hold one 0 (different) or 1 (same) per pair, shape "
                         f"({x1.shape[0]},), but got shape {t.shape}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', but got "
                         f"{reduction!r}")
    if not margin > 0:
        raise ValueError(f"{op}: margin must be positive, but got {margin!r}")
    same = tensor(t.astype(np.float32))
    d = F.pairwise_distance(x1, x2, eps=eps)
    hinge = F.clamp(margin - d, min=0.0)
    loss = 0.5 * (same * d * d + (1.0 - same) * hinge * hinge)
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


class ContrastiveLoss(nn.Module):
    def __init__(self, margin: float = 1.0, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__()
        self.margin, self.eps, self.reduction = margin, eps, reduction

    def forward(self, x1, x2, target):
        return contrastive_loss(x1, x2, target, self.margin, self.eps, self.reduction)


def _as_numpy(x, op: str, arg: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().numpy()
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)):
        return np.asarray(x)
    raise TypeError(f"{op}: {arg} must be a Tensor, numpy array or list, but got "
                    f"{type(x).__name__}")


def distance_matrix(embeddings) -> np.ndarray:
    """All Euclidean distances (N, N) between the rows of embeddings (N, D), in float64."""
    e = _as_numpy(embeddings, "distance_matrix", "embeddings").astype(np.float64)
    if e.ndim != 2:
        raise ValueError(f"distance_matrix: embeddings must be 2-D (N, D), but got shape "
                         f"{e.shape}")
    sq = np.einsum("ij,ij->i", e, e)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (e @ e.T)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(np.maximum(d2, 0.0))


def semi_hard_triplets(embeddings, labels):
    """FaceNet's semi-hard mining inside a batch. For every anchor-positive pair (a, p), a != p,
    same label, the negative n is the closest one still farther from the anchor than the
    positive (d(a, p) < d(a, n)); where no negative is that far, the farthest negative (as
    TensorFlow's triplet_semihard_loss). Anchors without a positive or a negative give none.
    Returns int64 index arrays (anchor, positive, negative), one entry per triplet."""
    op = "semi_hard_triplets"
    y = _as_numpy(labels, op, "labels")
    d = distance_matrix(embeddings)
    if y.shape != (d.shape[0],):
        raise ValueError(f"{op}: labels must be 1-D with one label per embedding "
                         f"({d.shape[0]}), but got shape {y.shape}")
    same = y[:, None] == y[None, :]
    a, p = np.nonzero(same & ~np.eye(len(y), dtype=bool))
    neg = ~same[a]                                  # (pairs, N): the candidates per pair
    keep = neg.any(1)
    a, p, neg = a[keep], p[keep], neg[keep]
    d_an = d[a]
    farther = neg & (d_an > d[a, p][:, None])
    semi = np.where(farther, d_an, np.inf).argmin(1)
    hardest_fallback = np.where(neg, d_an, -np.inf).argmax(1)
    n = np.where(farther.any(1), semi, hardest_fallback)
    return a.astype(np.int64), p.astype(np.int64), n.astype(np.int64)


class SemiHardTripletLoss(nn.Module):
    """Mines semi-hard triplets in the batch (semi_hard_triplets, on detached embeddings) and
    applies TripletMarginLoss(margin, p=2) to them: loss(embeddings (N, D), labels (N,))."""

    def __init__(self, margin: float = 1.0, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__()
        self.triplet = nn.TripletMarginLoss(margin=margin, eps=eps, reduction=reduction)

    def forward(self, embeddings, labels):
        a, p, n = semi_hard_triplets(embeddings, labels)
        if a.size == 0:
            raise ValueError("SemiHardTripletLoss: the batch holds no triplet (it needs two "
                             "images of one class and one of another)")
        return self.triplet(embeddings[a], embeddings[p], embeddings[n])


def balanced_batches(labels, classes_per_batch: int, samples_per_class: int, num_batches: int,
                     generator=None):
    """Yields index arrays of classes_per_batch random classes x samples_per_class random images
    each (the P x K batches triplet mining needs: every anchor has positives and negatives).
    Classes with fewer images than samples_per_class are drawn with replacement."""
    op = "balanced_batches"
    y = _as_numpy(labels, op, "labels")
    classes = np.unique(y)
    if not 2 <= classes_per_batch <= len(classes):
        raise ValueError(f"{op}: classes_per_batch must be in [2, {len(classes)}] (the classes in "
                         f"labels), but got {classes_per_batch}")
    if samples_per_class < 2:
        raise ValueError(f"{op}: samples_per_class must be >= 2, but got {samples_per_class}")
    rng = np.random.default_rng(generator)
    members = {c: np.flatnonzero(y == c) for c in classes}
    for _ in range(num_batches):
        picked = rng.choice(classes, classes_per_batch, replace=False)
        yield np.concatenate([rng.choice(members[c], samples_per_class,
                                         replace=len(members[c]) < samples_per_class)
                              for c in picked])


def choose_threshold(distances, same) -> tuple[float, float]:
    """The verification threshold t ("same" when distance <= t) that classifies the given pairs
    best: returns (t, accuracy on those pairs). Candidates are the midpoints between sorted
    distances (and just below the smallest), so ties never split a decision."""
    d = _as_numpy(distances, "choose_threshold", "distances").astype(np.float64).ravel()
    s = _as_numpy(same, "choose_threshold", "same").astype(bool).ravel()
    if d.size == 0 or d.shape != s.shape:
        raise ValueError(f"choose_threshold: distances and same must be non-empty and of one "
                         f"length, but got {d.size} and {s.size}")
    order = np.argsort(d, kind="stable")
    d, s = d[order], s[order]
    # Threshold after the first k sorted pairs: those k predicted same, the rest different.
    correct = np.concatenate([[0], np.cumsum(s)]) + np.concatenate(
        [[np.count_nonzero(~s)], np.count_nonzero(~s) - np.cumsum(~s)])
    distinct = np.concatenate([[True], d[1:] > d[:-1], [True]])  # cut only between values
    correct = np.where(distinct, correct, -1)
    k = int(np.argmax(correct))
    if k == 0:
        t = float(np.nextafter(d[0], -np.inf))
    elif k == len(d):
        t = d[-1]
    else:
        t = 0.5 * (d[k - 1] + d[k])
    return float(t), float(correct[k] / len(d))


def one_shot_accuracy(support_embeddings, support_labels, query_embeddings,
                      query_labels) -> float:
    """Nearest-neighbour classification of each query by the support set (one or more labelled
    examples per class): the fraction of queries given their true label."""
    op = "one_shot_accuracy"
    se = _as_numpy(support_embeddings, op, "support_embeddings").astype(np.float64)
    qe = _as_numpy(query_embeddings, op, "query_embeddings").astype(np.float64)
    sl = _as_numpy(support_labels, op, "support_labels")
    ql = _as_numpy(query_labels, op, "query_labels")
    if se.ndim != 2 or qe.ndim != 2 or se.shape[1] != qe.shape[1]:
        raise ValueError(f"{op}: embeddings must be 2-D with one width, but got {se.shape} and "
                         f"{qe.shape}")
    if sl.shape != (len(se),) or ql.shape != (len(qe),):
        raise ValueError(f"{op}: one label per embedding expected, but got {sl.shape} for "
                         f"{len(se)} support and {ql.shape} for {len(qe)} query embeddings")
    d2 = (qe * qe).sum(1)[:, None] + (se * se).sum(1)[None, :] - 2.0 * qe @ se.T
    return float(np.mean(sl[d2.argmin(1)] == ql))


def one_shot_episodes(labels, n_way: int, episodes: int, queries_per_class: int = 1,
                      k_shot: int = 1, generator=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """N-way K-shot episodes over labels: each picks n_way random classes, k_shot support and
    queries_per_class query images of each (all distinct). Returns [(support_idx, query_idx)],
    so several embeddings (a network's, raw pixels) are judged on the very same episodes."""
    op = "one_shot_episodes"
    y = _as_numpy(labels, op, "labels")
    for arg, v in (("n_way", n_way), ("episodes", episodes),
                   ("queries_per_class", queries_per_class), ("k_shot", k_shot)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{op}: {arg} must be a positive int, but got {v!r}")
    classes, counts = np.unique(y, return_counts=True)
    usable = classes[counts >= k_shot + queries_per_class]
    if n_way < 2 or n_way > len(usable):
        raise ValueError(f"{op}: n_way must be in [2, {len(usable)}] (the classes with at least "
                         f"k_shot + queries_per_class = {k_shot + queries_per_class} images), "
                         f"but got {n_way}")
    rng = np.random.default_rng(generator)
    members = {c: np.flatnonzero(y == c) for c in usable}
    out = []
    for _ in range(episodes):
        picks = [rng.choice(members[c], k_shot + queries_per_class, replace=False)
                 for c in rng.choice(usable, n_way, replace=False)]
        out.append((np.concatenate([p[:k_shot] for p in picks]),
                    np.concatenate([p[k_shot:] for p in picks])))
    return out


def episode_accuracies(embeddings, labels, episodes) -> np.ndarray:
    """one_shot_accuracy of every (support_idx, query_idx) episode on embeddings (N, D): the
    per-episode accuracies (episodes,), float64."""
    e = _as_numpy(embeddings, "episode_accuracies", "embeddings")
    y = _as_numpy(labels, "episode_accuracies", "labels")
    return np.array([one_shot_accuracy(e[s], y[s], e[q], y[q]) for s, q in episodes])


def verification_pairs(labels, num_pairs: int, generator=None):
    """num_pairs random pairs (i, j, same), i != j, alternately same-class and different-class
    (half each): the balanced pairs a verification threshold is chosen and judged on."""
    op = "verification_pairs"
    y = _as_numpy(labels, op, "labels")
    if isinstance(num_pairs, bool) or not isinstance(num_pairs, (int, np.integer)) or \
            num_pairs <= 0:
        raise ValueError(f"{op}: num_pairs must be a positive int, but got {num_pairs!r}")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2 or counts.max() < 2:
        raise ValueError(f"{op}: labels need two classes and a class with two images")
    rng = np.random.default_rng(generator)
    members = {c: np.flatnonzero(y == c) for c in classes}
    pairable = classes[counts >= 2]
    i, j = np.empty(num_pairs, np.int64), np.empty(num_pairs, np.int64)
    for k in range(num_pairs):
        if k % 2 == 0:
            i[k], j[k] = rng.choice(members[rng.choice(pairable)], 2, replace=False)
        else:
            a, b = rng.choice(classes, 2, replace=False)
            i[k], j[k] = rng.choice(members[a]), rng.choice(members[b])
    return i, j, y[i] == y[j]


@no_grad()
def embed(model, images, batch_size: int = 256) -> np.ndarray:
    """Embeddings (N, D) of images (N, C, H, W), numpy or Tensor, in eval mode, batch by batch
    (the model's train/eval mode is restored)."""
    images = _as_numpy(images, "embed", "images")
    was_training = model.training
    model.eval()
    out = [model(tensor(images[i:i + batch_size])).numpy()
           for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return np.concatenate(out)
