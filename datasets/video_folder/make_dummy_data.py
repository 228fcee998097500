"""Writes datasets/video_folder/dummy_data: tiny real mp4 / webm (VP9) / avi clips.

Run from the repository root: `python datasets/video_folder/make_dummy_data.py`.
"""

import pathlib

from cover_tf.builders.video_writer import moving_square_clip, write_video

ROOT = pathlib.Path(__file__).resolve().parent / "dummy_data"
FILES = [
    "train/cat/clip1.mp4",
    "train/cat/clip2.webm",
    "train/dog/clip3.avi",
    "train/dog/clip4.mp4",
    "test/cat/clip5.webm",
    "test/dog/clip6.mp4",
]


def main():
    for seed, name in enumerate(FILES):
        write_video(ROOT / name, moving_square_clip(6, 24, 32, seed=seed), fps=6.0)
    (ROOT / "train" / "dog" / "notes.txt").write_text("not a video: ignored\n")


if __name__ == "__main__":
    main()
