"""Writes datasets/moments_in_time/dummy_data: categories, CSVs and tiny mp4 clips.

Run from the repository root: `python datasets/moments_in_time/make_dummy_data.py`.
"""

import pathlib

from cover_tf.builders.video_writer import moving_square_clip, write_video

ROOT = pathlib.Path(__file__).resolve().parent / "dummy_data"
CATEGORIES = ["barking", "clapping", "running"]
SPLITS = {
    ("trainingSet.csv", "training"): [
        "barking/yt-aaa_1.mp4",
        "clapping/yt-bbb_2.mp4",
        "running/yt-ccc_3.mp4",
        "running/yt-ddd_4.mp4",
    ],
    ("validationSet.csv", "validation"): ["clapping/yt-eee_5.mp4"],
}


def main():
    ROOT.mkdir(parents=True, exist_ok=True)
    lines = [f"{name},{i}" for i, name in enumerate(CATEGORIES)]
    (ROOT / "moments_categories.txt").write_text("\n".join(lines) + "\n")
    for seed, ((csv_name, folder), files) in enumerate(SPLITS.items()):
        rows = []
        for i, relative in enumerate(files):
            write_video(ROOT / folder / relative, moving_square_clip(6, 24, 32, 10 * seed + i))
            rows.append(f"{relative},{relative.split('/')[0]},3,0")
        (ROOT / csv_name).write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
