"""Writes datasets/image_folder/dummy_data: tiny jpg and png images, one unreadable file.

Run from the repository root: `python datasets/image_folder/make_dummy_data.py`.
"""

import pathlib

import numpy as np
import PIL.Image

ROOT = pathlib.Path(__file__).resolve().parent / "dummy_data"
FILES = ["train/cat/a.jpg", "train/cat/b.png", "train/dog/c.jpg", "test/dog/d.png"]


def main():
    rng = np.random.default_rng(0)
    for name in FILES:
        path = ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = "RGBA" if name.endswith(".png") else "RGB"  # RGBA: converted to RGB
        pixels = rng.integers(0, 256, (12, 16, len(mode)), dtype=np.uint8)
        PIL.Image.fromarray(pixels, mode).save(path)
    (ROOT / "train/dog/broken.jpg").write_bytes(b"not an image")  # skipped and reported


if __name__ == "__main__":
    main()
