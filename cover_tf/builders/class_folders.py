"""Reading `root/<split>/<class>/<file>` trees (video_folder and image_folder builders)."""

import tensorflow as tf
from etils import epath


def list_class_folders(split_dir, suffixes) -> dict[str, list[epath.Path]]:
    """{class folder name: sorted paths of the files with one of `suffixes`} of a split folder.

    Files directly in the split folder and files with other suffixes are ignored; suffixes are
    compared lower-case.
    """
    split_dir = epath.Path(split_dir)
    classes = {}
    for name in sorted(tf.io.gfile.listdir(str(split_dir))):
        class_dir = split_dir / name.rstrip("/")
        if class_dir.is_dir():
            classes[class_dir.name] = sorted(
                class_dir / f
                for f in tf.io.gfile.listdir(str(class_dir))
                if epath.Path(f).suffix.lower() in suffixes
            )
    return classes
