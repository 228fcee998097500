"""Reading `root/<split>/<class>/<file>` trees (video_folder and image_folder builders).

Everything that does not become an example is reported in the split's skipped-file list: a file
of another kind (notes.txt, .DS_Store), a file outside a class folder, a folder inside a class
folder, an empty class folder (which is not made a class), a class folder that train lacks.
"""

import os

import tensorflow as tf
from etils import epath

from cover_tf.builders.examples import Item, SkipLog


def list_class_folders(
    split_dir, suffixes, *, split: str, skipped: SkipLog, kind: str = "media"
) -> dict[str, list[epath.Path]]:
    """{class folder name: sorted paths of its files with one of `suffixes`} of a split folder.

    Suffixes are compared lower-case. Class folders without such files are left out; they and
    every other entry that is not such a file in a class folder go to `skipped` (key
    "<class>/<name>", or the name for entries of the split folder itself).
    """
    split_dir = epath.Path(split_dir)
    classes = {}
    for name in sorted(tf.io.gfile.listdir(os.fspath(split_dir))):
        name = name.rstrip("/")
        class_dir = split_dir / name
        if not class_dir.is_dir():
            skipped.add(split, name, class_dir, "not in a class folder (<split>/<class>/<file>)")
            continue
        files = []
        for entry in sorted(tf.io.gfile.listdir(os.fspath(class_dir))):
            entry = entry.rstrip("/")
            path, key = class_dir / entry, f"{name}/{entry}"
            if path.is_dir():
                skipped.add(split, key, path, "a folder inside a class folder (not searched)")
            elif path.suffix.lower() in suffixes:
                files.append(path)
            else:
                suffix = path.suffix or "none"
                article = "an" if kind[0] in "aeiou" else "a"
                skipped.add(split, key, path, f"not {article} {kind} file (suffix {suffix!r})")
        if files:
            classes[name] = files
        else:
            reason = f"empty class folder (no {kind} files): not made a class"
            skipped.add(split, f"{name}/", class_dir, reason)
    return classes


def class_folder_items(
    manual_dir: epath.Path, suffixes, *, skipped: SkipLog, builder: str, kind: str
) -> tuple[list[str], dict[str, list[Item]]]:
    """(class names, {split: items}) of `manual_dir/<split>/<class>/<file>`.

    Classes are the sorted non-empty class folders of `train`; keys are "<class>/<file name>".
    A file in another split's class folder that train lacks is reported, not fatal.
    FileNotFoundError naming the path when `train/` is absent; ValueError when it has no class.
    """
    train_dir = manual_dir / "train"
    if not train_dir.is_dir():
        raise FileNotFoundError(
            f"{builder}: expected a train split folder {os.fspath(train_dir)!r} "
            f"(layout <root>/<split>/<class>/<{kind}>)"
        )
    listed = {}
    for entry in sorted(manual_dir.iterdir()):
        if entry.is_dir():
            listed[entry.name] = list_class_folders(
                entry, suffixes, split=entry.name, skipped=skipped, kind=kind
            )
    class_names = sorted(listed["train"])
    if not class_names:
        raise ValueError(
            f"{builder}: no class folder with {kind} files in {os.fspath(train_dir)!r} "
            f"(layout <root>/<split>/<class>/<{kind}>)"
        )
    label_index = {name: i for i, name in enumerate(class_names)}
    splits = {}
    for split, classes in listed.items():
        items = []
        for class_name, paths in classes.items():
            for path in paths:
                key = f"{class_name}/{path.name}"
                if class_name in label_index:
                    items.append(Item(key, path, label_index[class_name]))
                else:
                    reason = f"class folder {class_name!r} is not one of the train classes"
                    skipped.add(split, key, path, reason)
        splits[split] = items
    return class_names, splits
