"""Classic edge filters and Canny on one image, written as PNGs.

    python examples/python/filters.py [IMAGE] [--out DIR]

Without IMAGE it uses scikit-image's camera picture when scikit-image is installed, else a
synthetic image of shapes. The same maps come from `python -m cnncore filters IMAGE --out DIR`.
"""

import argparse
import os

import numpy as np

from cnncore import filters
from cnncore.image import read_image, to_grayscale, write_image


def synthetic(size=128):
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = 0.2 + 0.1 * xx
    image[(xx - 0.3) ** 2 + (yy - 0.35) ** 2 < 0.04] = 0.9      # a disc
    image[(0.55 < xx) & (xx < 0.9) & (0.5 < yy) & (yy < 0.8)] = 0.6  # a rectangle
    return image.astype(np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image", nargs="?")
    p.add_argument("--out", default="filters_out")
    args = p.parse_args()
    if args.image:
        image = to_grayscale(read_image(args.image))
    else:
        try:
            from skimage import data
            image = data.camera().astype(np.float32) / 255
        except ImportError:
            image = synthetic()
    os.makedirs(args.out, exist_ok=True)
    for name in ("sobel", "scharr", "prewitt", "roberts", "laplace"):
        m = np.abs(getattr(filters, name)(image))
        write_image(os.path.join(args.out, f"{name}.png"), m / max(m.max(), 1e-12))
        print(f"{name:8s} max {m.max():.3f}  mean {m.mean():.4f}")
    theta = filters.gradient_direction(image)
    write_image(os.path.join(args.out, "direction.png"), (theta + np.pi) / (2 * np.pi))
    for sigma in (1.0, 2.0, 3.0):
        edges = filters.canny(image, sigma=sigma)
        write_image(os.path.join(args.out, f"canny_sigma{sigma:g}.png"), edges)
        print(f"canny sigma={sigma:g}: {edges.sum()} edge pixels ({edges.mean():.1%})")
    print(f"PNGs in {args.out}/")


if __name__ == "__main__":
    main()
