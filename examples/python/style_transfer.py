"""Neural style transfer (Gatys et al.) on a small VGG, writing the image sequence as PNGs.

    pip install ".[viz]"
    python examples/python/style_transfer.py --out style_out            # synthetic images
    python examples/python/style_transfer.py --content photo.png --style painting.png \
        --weights vgg11.safetensors --size 128 --steps 300 --out style_out

Without --weights the VGG has random (He-initialised) weights: random convolutional features
still carry texture statistics, so the Gram loss transfers colours and stroke patterns, but
ImageNet weights (vgg11's state dict saved from torchvision, loaded with cnncore.io.load_torch,
no torch needed for .safetensors) give the familiar results.
"""

import argparse
import os

import numpy as np

import cnncore
from cnncore import style, viz

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--content", help="content image (PNG/JPEG); default a synthetic scene")
parser.add_argument("--style", help="style image; default synthetic coloured stripes")
parser.add_argument("--weights", help="vgg11 weights (.safetensors or .pth) from PyTorch")
parser.add_argument("--size", type=int, default=64, help="images are resized to size x size")
parser.add_argument("--steps", type=int, default=100)
parser.add_argument("--optimizer", choices=["adam", "lbfgs"], default="adam")
parser.add_argument("--lr", type=float, default=0.05)
parser.add_argument("--style-weight", type=float, default=1e6)
parser.add_argument("--every", type=int, default=10, help="write a frame every N steps")
parser.add_argument("--out", default="style_out")
args = parser.parse_args()


def load(path, size):
    from matplotlib import image as mimage
    a = mimage.imread(path).astype(np.float32)
    if a.max() > 1.0:
        a /= 255.0
    a = (np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a[..., :3]).transpose(2, 0, 1)
    t = cnncore.functional.interpolate(cnncore.tensor(np.ascontiguousarray(a[None])),
                                       size=(size, size), mode="bilinear", align_corners=False)
    return np.clip(t.numpy()[0], 0.0, 1.0)


def synthetic(size):
    yy, xx = np.mgrid[:size, :size] / size
    sky = np.stack([0.3 + 0.4 * yy, 0.5 + 0.3 * yy, 0.9 - 0.2 * yy])
    sun = ((yy - 0.3) ** 2 + (xx - 0.7) ** 2) < 0.02
    hill = yy > 0.65 + 0.1 * np.sin(xx * 6)
    content = np.where(sun, np.array([1.0, 0.85, 0.2])[:, None, None], sky)
    content = np.where(hill, np.array([0.2, 0.55, 0.2])[:, None, None], content)
    bands = (np.sin((xx + yy) * 25) > 0)
    swirl = 0.5 + 0.5 * np.sin(xx * 40) * np.cos(yy * 30)
    style_img = np.stack([np.where(bands, 0.9, 0.1 * swirl), 0.2 + 0.3 * swirl,
                          np.where(bands, 0.2, 0.8)])
    return content.astype(np.float32), style_img.astype(np.float32)


cnncore.manual_seed(0)
content, style_img = synthetic(args.size)
if args.content:
    content = load(args.content, args.size)
if args.style:
    style_img = load(args.style, args.size)
state = cnncore.io.load_torch(args.weights) if args.weights else None
st = style.StyleTransfer(style.style_vgg(state), style_weight=args.style_weight)
os.makedirs(args.out, exist_ok=True)
viz.save_image(content, os.path.join(args.out, "content.png"), scale=4)
viz.save_image(style_img, os.path.join(args.out, "style.png"), scale=4)


def frame(step, image):
    viz.save_image(image, os.path.join(args.out, f"frame_{step:04d}.png"), scale=4)


image, history = st.transfer(content, style_img, steps=args.steps, optimizer=args.optimizer,
                             lr=args.lr, every=args.every, callback=frame)
viz.save_image(image, os.path.join(args.out, "result.png"), scale=4)
viz.plot_history([{"epoch": h["step"] + 1, "content_loss": h["content"],
                   "style_loss": h["style"] * args.style_weight} for h in history],
                 os.path.join(args.out, "losses.png"))
first, last = history[0], history[-1]
print(f"{args.steps} {args.optimizer} steps: total loss {first['total']:.4g} -> "
      f"{last['total']:.4g} (content {first['content']:.4g} -> {last['content']:.4g}, "
      f"style {first['style']:.4g} -> {last['style']:.4g}); frames in {args.out}/")
