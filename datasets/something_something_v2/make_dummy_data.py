"""Writes datasets/something_something_v2/dummy_data: annotation JSONs and tiny VP9 webm clips.

Run from the repository root: `python datasets/something_something_v2/make_dummy_data.py`.
"""

import json
import pathlib

from cover_tf.builders.video_writer import moving_square_clip, write_video

ROOT = pathlib.Path(__file__).resolve().parent / "dummy_data"
LABELS = {
    "Pushing something from left to right": "0",
    "Pushing something from right to left": "1",
    "Putting something on a surface": "2",
}
SPLITS = {
    "train": [
        ("101", "Pushing [something] from left to right"),
        ("102", "Pushing [something] from right to left"),
        ("103", "Putting [something] on a surface"),
    ],
    "validation": [("201", "Pushing [something] from left to right")],
}


def main():
    videos = ROOT / "20bn-something-something-v2"
    (ROOT / "labels.json").parent.mkdir(parents=True, exist_ok=True)
    (ROOT / "labels.json").write_text(json.dumps(LABELS, indent=1))
    for split, entries in SPLITS.items():
        annotations = []
        for video_id, template in entries:
            label = template.replace("[", "").replace("]", "")
            annotations.append(
                {"id": video_id, "label": label, "template": template, "placeholders": ["it"]}
            )
            write_video(videos / f"{video_id}.webm", moving_square_clip(6, 24, 32, int(video_id)))
        (ROOT / f"{split}.json").write_text(json.dumps(annotations, indent=1))
    (ROOT / "test.json").write_text(json.dumps([{"id": "301"}]))
    write_video(videos / "301.webm", moving_square_clip(6, 24, 32, 301))


if __name__ == "__main__":
    main()
