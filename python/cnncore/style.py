"""Neural style transfer (Gatys, Ecker & Bethge, 2015): an image is optimised so that its deep
features match a content image's and its Gram matrices (feature correlations, i.e. texture)
match a style image's.

With F_l the (N_l channels x M_l = H_l W_l positions) feature map of layer l:
    Gram:    G_l = F_l F_l^T                                  (N_l x N_l)
    content: L_c = 1/2 sum (F_l - P_l)^2                      over the content layers
    style:   L_s = sum_l w_l / (4 N_l^2 M_l^2) sum (G_l - A_l)^2 over the style layers
    total:   alpha L_c + beta L_s
Features are captured with forward hooks on the named layers of any network (named_modules
names); `style_vgg()` gives the small VGG (vgg11's first blocks, average pooling as Gatys
suggest) it runs on, with random weights or a loaded state dict.

    st = StyleTransfer(style_vgg())
    image, history = st.transfer(content, style, steps=200)   # arrays (3, H, W) in [0, 1]
"""

from __future__ import annotations

import numpy as np

from . import nn
from ._ops import tensor_ops as T
from ._ops.linalg import matmul
from .tensor import Tensor, no_grad, tensor

__all__ = ["gram_matrix", "content_loss", "style_loss", "FeatureExtractor", "style_vgg",
           "StyleTransfer", "VGG11_STYLE_LAYERS", "VGG11_CONTENT_LAYERS", "IMAGENET_MEAN",
           "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# In vgg11's `features` (and style_vgg()): relu1_1, relu2_1, relu3_1, relu4_1 for style and
# relu3_2 for content (relu4_2 in Gatys' VGG-19; vgg11 has no conv4_2 before its 4th pool).
VGG11_STYLE_LAYERS = ("1", "4", "7", "12")
VGG11_CONTENT_LAYERS = ("9",)


def _features_4d(x, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: features must be a Tensor, but got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{op}: features must be 4-D (N, C, H, W), but got shape {x.shape}")
    return x


def gram_matrix(features) -> Tensor:
    """G = F F^T per image: features (N, C, H, W) -> (N, C, C), unnormalised (style_loss
    applies Gatys' 1 / (4 C^2 (HW)^2))."""
    x = _features_4d(features, "gram_matrix")
    n, c, h, w = x.shape
    f = T.reshape(x, (n, c, h * w))
    return matmul(f, T.transpose(f, 1, 2))


def content_loss(features, target) -> Tensor:
    """1/2 sum (F - P)^2 (Gatys' content loss of one layer)."""
    x = _features_4d(features, "content_loss")
    if tuple(target.shape) != tuple(x.shape):
        raise ValueError(f"content_loss: target shape {tuple(target.shape)} differs from the "
                         f"features' {x.shape}")
    d = x - target
    return 0.5 * T.sum(d * d)


def style_loss(features, target_gram) -> Tensor:
    """1 / (4 C^2 M^2) sum (G - A)^2 for one layer: features (N, C, H, W) (M = H W), target_gram
    the style image's Gram matrix (N or 1, C, C); summed over the batch."""
    x = _features_4d(features, "style_loss")
    _, c, h, w = x.shape
    if tuple(target_gram.shape)[-2:] != (c, c):
        raise ValueError(f"style_loss: target_gram must be (N, {c}, {c}) for {c} channels, but "
                         f"got {tuple(target_gram.shape)}")
    d = gram_matrix(x) - target_gram
    return T.sum(d * d) * (1.0 / (4.0 * c * c * (h * w) ** 2))


class FeatureExtractor:
    """Forward hooks on the named submodules of model: extractor(x) runs the model and returns
    {name: output} for those layers (the forward stops being needed past the deepest one, but
    the whole model runs). Use as a context manager or call remove() to take the hooks off."""

    def __init__(self, model: nn.Module, layers):
        layers = [layers] if isinstance(layers, str) else list(layers)
        modules = dict(model.named_modules())
        missing = [n for n in layers if n not in modules]
        if missing or not layers:
            raise ValueError(f"FeatureExtractor: no layer named {', '.join(map(repr, missing))} in "
                             f"{type(model).__name__}; layers are: "
                             f"{', '.join(n for n in modules if n)}" if missing else
                             "FeatureExtractor: layers must name at least one layer")
        self.model, self.layers = model, layers
        self._out: dict = {}
        self._handles = [modules[n].register_forward_hook(self._saver(n)) for n in layers]

    def _saver(self, name):
        def hook(module, inputs, output):
            self._out[name] = output
        return hook

    def __call__(self, x) -> dict:
        self._out = {}
        self.model(x)
        return {n: self._out[n] for n in self.layers}

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def style_vgg(state_dict=None, num_layers: int = 13, pool: str = "avg") -> nn.Sequential:
    """vgg11's `features` up to layer num_layers (13: through relu4_1), for style transfer.
    state_dict: weights for vgg11 (its `features.*` keys are used; e.g. from
    cnncore.io.load_torch) or None for random He-initialised weights. pool='avg' swaps the max
    pools for average pools (smoother gradients, as Gatys et al. suggest)."""
    from .models.vgg import VGG_CONFIGS, make_vgg_layers
    if pool not in ("avg", "max"):
        raise ValueError(f"style_vgg: pool must be 'avg' or 'max', but got {pool!r}")
    features = make_vgg_layers(VGG_CONFIGS["A"])
    if not 1 <= num_layers <= len(features):
        raise ValueError(f"style_vgg: num_layers must be in [1, {len(features)}], but got "
                         f"{num_layers}")
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    features = features[:num_layers]
    if state_dict is not None:
        sub = {k[len("features."):]: v for k, v in state_dict.items()
               if k.startswith("features.")} or dict(state_dict)
        # the deeper layers a full vgg11 state dict carries are cut off: strict on what is kept
        missing = features.load_state_dict({k: v for k, v in sub.items()
                                            if k.split(".")[0] in features._modules},
                                           strict=False).missing_keys
        if missing:
            raise ValueError(f"style_vgg: state_dict lacks {', '.join(missing)} (expected "
                             f"vgg11 weights, keys 'features.<i>.weight' / '.bias')")
    if pool == "avg":
        for name, m in list(features.named_children()):
            if isinstance(m, nn.MaxPool2d):
                setattr(features, name, nn.AvgPool2d(kernel_size=2, stride=2))
    features.eval()
    features.requires_grad_(False)
    return features


def _image_array(img, op: str, arg: str) -> np.ndarray:
    a = img.detach().numpy() if isinstance(img, Tensor) else np.asarray(img, np.float32)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[0] != 1:
        raise ValueError(f"{op}: {arg} must be one image (C, H, W) or (1, C, H, W), but got "
                         f"shape {a.shape}")
    return np.ascontiguousarray(a, np.float32)


class StyleTransfer:
    """Optimises an image to carry content's features and style's Gram matrices.

    model: any Module taking (1, C, H, W) (style_vgg() by default); content_layers /
    style_layers: names from model.named_modules(); style_layer_weights: w_l (default equal,
    summing to 1); style_weight: beta for content_weight alpha = 1 (1e6 balances the two on
    style_vgg() for [0, 1] images: the 1 / (4 N^2 M^2) normalisation makes L_s small);
    normalize: subtract IMAGENET_MEAN and divide by IMAGENET_STD before the model (what
    ImageNet-trained weights expect; images themselves stay in [0, 1])."""

    def __init__(self, model: nn.Module | None = None, content_layers=VGG11_CONTENT_LAYERS,
                 style_layers=VGG11_STYLE_LAYERS, content_weight: float = 1.0,
                 style_weight: float = 1e6, style_layer_weights=None, normalize: bool = True):
        self.model = style_vgg() if model is None else model
        self.model.eval()
        self.model.requires_grad_(False)  # only the image is optimised
        self.content_layers, self.style_layers = list(content_layers), list(style_layers)
        self.content_weight, self.style_weight = float(content_weight), float(style_weight)
        if style_layer_weights is None:
            style_layer_weights = [1.0 / len(self.style_layers)] * len(self.style_layers)
        if len(style_layer_weights) != len(self.style_layers):
            raise ValueError(f"StyleTransfer: {len(style_layer_weights)} style_layer_weights for "
                             f"{len(self.style_layers)} style_layers")
        self.style_layer_weights = [float(w) for w in style_layer_weights]
        self.normalize = normalize
        self._extract = FeatureExtractor(self.model,
                                         dict.fromkeys(self.content_layers + self.style_layers))
        self._targets = None

    def _prepare(self, x: Tensor) -> Tensor:
        if not self.normalize:
            return x
        c = x.shape[1]
        if c != 3:
            raise ValueError(f"StyleTransfer: normalize=True needs RGB images (3 channels), but "
                             f"got {c}; pass normalize=False")
        mean = tensor(np.array(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1))
        std = tensor(np.array(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1))
        return (x - mean) / std

    def set_targets(self, content, style) -> None:
        """Records P_l (content features) and A_l (style Gram matrices)."""
        c = _image_array(content, "StyleTransfer", "content")
        s = _image_array(style, "StyleTransfer", "style")
        if c.shape[1] != s.shape[1]:
            raise ValueError(f"StyleTransfer: content has {c.shape[1]} channels but style has "
                             f"{s.shape[1]}")
        with no_grad():
            fc = self._extract(self._prepare(tensor(c)))
            fs = self._extract(self._prepare(tensor(s)))
            self._targets = ({n: fc[n].detach() for n in self.content_layers},
                             {n: gram_matrix(fs[n]).detach() for n in self.style_layers})

    def losses(self, image: Tensor) -> dict:
        """{'content', 'style', 'total'} (Tensors) for image (1, C, H, W)."""
        if self._targets is None:
            raise RuntimeError("StyleTransfer.losses: call set_targets(content, style) first")
        feats = self._extract(self._prepare(image))
        p, a = self._targets
        lc = T.sum(T.stack([content_loss(feats[n], p[n]) for n in self.content_layers]))
        ls = T.sum(T.stack([w * style_loss(feats[n], a[n])
                            for n, w in zip(self.style_layers, self.style_layer_weights)]))
        return {"content": lc, "style": ls,
                "total": self.content_weight * lc + self.style_weight * ls}

    def transfer(self, content, style, steps: int = 200, optimizer: str = "adam",
                 lr: float = 0.02, init: str = "content", every: int = 0, callback=None,
                 seed: int = 0):
        """Optimises the image for `steps` steps and returns (image (C, H, W) in [0, 1], history:
        one dict per step with content, style and total losses). optimizer: 'adam' (lr is its
        step size) or 'lbfgs' (L-BFGS with a backtracking line search, one step = one
        iteration) or 'lbfgs_strong_wolfe' (cnncore.optim.LBFGS, torch's algorithm, with
        lr, history 10 and the strong-Wolfe search, one iteration per step, the pixels clamped
        to [0, 1] after each as in PyTorch's neural-style tutorial). init: 'content', 'style' or 'noise'. every > 0: callback(step, image) every
        that many steps (and after the last), e.g. to write the image sequence."""
        from . import optim
        if optimizer not in ("adam", "lbfgs", "lbfgs_strong_wolfe"):
            raise ValueError(f"StyleTransfer.transfer: optimizer must be 'adam', 'lbfgs' or "
                             f"'lbfgs_strong_wolfe', but got {optimizer!r}")
        if init not in ("content", "style", "noise"):
            raise ValueError(f"StyleTransfer.transfer: init must be 'content', 'style' or "
                             f"'noise', but got {init!r}")
        self.set_targets(content, style)
        c = _image_array(content, "StyleTransfer", "content")
        if init == "noise":
            start = np.random.default_rng(seed).random(c.shape, dtype=np.float32)
        elif init == "style":
            s = _image_array(style, "StyleTransfer", "style")
            if s.shape != c.shape:
                raise ValueError(f"StyleTransfer.transfer: init='style' needs the style image "
                                 f"in the content's shape {c.shape}, but got {s.shape}")
            start = s.copy()
        else:
            start = c.copy()
        image = nn.Parameter(tensor(start))
        history = []

        def record(step, parts):
            history.append({"step": step, **{k: float(v.item()) for k, v in parts.items()}})
            if callback is not None and every > 0 and (step % every == 0 or step == steps - 1):
                callback(step, image.detach().numpy()[0].copy())

        if optimizer == "adam":
            opt = optim.Adam([image], lr=lr)
            for step in range(steps):
                opt.zero_grad()
                parts = self.losses(image)
                parts["total"].backward()
                opt.step()
                with no_grad():
                    image.copy_(tensor(np.clip(image.detach().numpy(), 0.0, 1.0)))
                record(step, parts)
        elif optimizer == "lbfgs_strong_wolfe":
            opt = optim.LBFGS([image], lr=lr, max_iter=1, history_size=10,
                              line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                total = self.losses(image)["total"]
                total.backward()
                return total
            for step in range(steps):
                opt.step(closure)
                with no_grad():
                    image.copy_(tensor(np.clip(image.detach().numpy(), 0.0, 1.0)))
                    record(step, self.losses(image))   # the clamped image's own losses
        else:
            _lbfgs(self, image, steps, record)
        return image.detach().numpy()[0].copy(), history


def _lbfgs(st: StyleTransfer, image, steps: int, record, memory: int = 10) -> None:
    """L-BFGS over the pixels (two-loop recursion, Armijo backtracking from a unit step), with
    the image kept in [0, 1] by projection after each line-search trial."""
    def value_and_grad(x):
        with no_grad():
            image.copy_(tensor(x))
        image.grad = None
        parts = st.losses(image)
        parts["total"].backward()
        return parts, image.grad.numpy().astype(np.float64).ravel()

    x = image.detach().numpy().astype(np.float64)
    parts, g = value_and_grad(x.astype(np.float32))
    f = float(parts["total"].item())
    s_hist, y_hist = [], []
    for step in range(steps):
        q = g.copy()
        alphas = []
        for s, y in zip(reversed(s_hist), reversed(y_hist)):
            a = s.dot(q) / y.dot(s)
            alphas.append(a)
            q -= a * y
        if s_hist:
            q *= s_hist[-1].dot(y_hist[-1]) / y_hist[-1].dot(y_hist[-1])
        else:
            q *= 1e-3 / max(np.abs(g).max(), 1e-12)  # first step: move pixels by ~1e-3
        for (s, y), a in zip(zip(s_hist, y_hist), reversed(alphas)):
            q += s * (a - y.dot(q) / y.dot(s))
        direction = -q
        t = 1.0
        for _ in range(20):
            x_new = np.clip(x + t * direction.reshape(x.shape), 0.0, 1.0)
            parts_new, g_new = value_and_grad(x_new.astype(np.float32))
            f_new = float(parts_new["total"].item())
            if f_new <= f + 1e-4 * g.dot((x_new - x).ravel()):
                break
            t *= 0.5
        s, y = (x_new - x).ravel(), g_new - g
        if s.dot(y) > 1e-12:  # keep the curvature pairs that keep the Hessian estimate positive
            s_hist.append(s)
            y_hist.append(y)
            if len(s_hist) > memory:
                s_hist.pop(0)
                y_hist.pop(0)
        x, f, g, parts = x_new, f_new, g_new, parts_new
        record(step, parts)
    with no_grad():
        image.copy_(tensor(x.astype(np.float32)))
