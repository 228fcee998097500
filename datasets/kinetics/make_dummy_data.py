"""Writes datasets/kinetics/dummy_data: the public mirror layout with tiny real mp4 clips.

Run from the repository root: `python datasets/kinetics/make_dummy_data.py`.
"""

import pathlib

from cover_tf.builders.video_writer import moving_square_clip, write_video

ROOT = pathlib.Path(__file__).resolve().parent / "dummy_data"
HEADER = "label,youtube_id,time_start,time_end,split,is_cc\n"
# (split folder, label, youtube_id, per-class folder?)
CLIPS = [
    ("train", "abseiling", "aaaaaaaaaaa", True),
    ("train", "abseiling", "bbbbbbbbbbb", True),
    ("train", "juggling balls", "ccccccccccc", True),
    ("train", "juggling balls", "ddddddddddd", True),
    ("train", "playing cello", "eeeeeeeeeee", True),
    ("val", "abseiling", "fffffffffff", False),
    ("val", "playing cello", "ggggggggggg", False),
    ("test", "", "hhhhhhhhhhh", False),
    ("test", "", "iiiiiiiiiii", False),
]
MISSING = ("train", "playing cello", "zzzzzzzzzzz")  # listed in the CSV, no file: skipped


def main():
    csv_rows = {"train": [], "val": [], "test": []}
    for seed, (split, label, youtube_id, per_class) in enumerate(CLIPS):
        start, end = 10 * seed, 10 * seed + 10
        name = f"{youtube_id}_{start:06d}_{end:06d}.mp4"
        folder = ROOT / split / label if per_class else ROOT / split
        write_video(folder / name, moving_square_clip(6, 24, 32, seed=seed), fps=6.0)
        quoted = f'"{label}"' if " " in label else label
        csv_rows[split].append(f"{quoted},{youtube_id},{start},{end},{split},0\n")
    csv_rows["train"].append(f'"{MISSING[1]}",{MISSING[2]},0,10,train,0\n')
    (ROOT / "annotations").mkdir(parents=True, exist_ok=True)
    for split, rows in csv_rows.items():
        header = HEADER if split != "test" else "youtube_id,time_start,time_end,split\n"
        if split == "test":
            rows = [row.split(",", 1)[1].rsplit(",", 1)[0] + "\n" for row in rows]
        (ROOT / "annotations" / f"{split}.csv").write_text(header + "".join(rows))


if __name__ == "__main__":
    main()
