"""Reading `root/<split>/<class>/<file>` trees (video_folder and image_folder builders).

Everything that does not become an example is reported in the split's skipped-file list: a file
of another kind (notes.txt, .DS_Store), a file outside a class folder, a folder inside a class
folder, an empty class folder (which is not made a class), a class folder that train lacks, a
split folder whose name is not UTF-8.

Any file name builds: a name that is not UTF-8 (bytes a user's camera or another OS wrote) is
read from disk as it is, and its key, class name and report entries use its printable form
(`examples.printable`: `clip\\xff.mp4`), logged when the file is kept.
"""

import os

import tensorflow as tf
from absl import logging
from etils import epath

from cover_tf.builders.examples import Item, SkipLog, printable
from cover_tf.workdir import is_local


def list_names(folder) -> list[str]:
    """The sorted entry names of a folder. A local folder is listed with `os.listdir`, which
    keeps names that are not UTF-8 (as surrogate escapes, which opening the path takes back);
    `tf.io.gfile.listdir` raises UnicodeDecodeError on them."""
    folder = os.fspath(folder)
    if is_local(folder):
        return sorted(os.listdir(folder))
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(folder))


def _printable_key(split: str, *names: str) -> str:
    """The key "<class>/<file>" in printable form; a name that is not UTF-8 is logged (its file
    is kept and read as named on disk)."""
    key = "/".join(printable(name) for name in names)
    if key != "/".join(names):
        logging.warning("Split %s: keeping %s (a name that is not UTF-8, printed)", split, key)
    return key


def list_class_folders(
    split_dir, suffixes, *, split: str, skipped: SkipLog, kind: str = "media"
) -> dict[str, list[epath.Path]]:
    """{class folder name: sorted paths of its files with one of `suffixes`} of a split folder.

    Names are as on disk (`list_names`). Suffixes are compared lower-case. Class folders without
    such files are left out; they and every other entry that is not such a file in a class folder
    go to `skipped` (key "<class>/<name>", or the name for entries of the split folder itself,
    in printable form).
    """
    split_dir = epath.Path(split_dir)
    classes = {}
    for name in list_names(split_dir):
        class_dir = split_dir / name
        if not class_dir.is_dir():
            key = printable(name)
            skipped.add(split, key, class_dir, "not in a class folder (<split>/<class>/<file>)")
            continue
        files = []
        for entry in list_names(class_dir):
            path, key = class_dir / entry, f"{printable(name)}/{printable(entry)}"
            if path.is_dir():
                skipped.add(split, key, path, "a folder inside a class folder (not searched)")
            elif path.suffix.lower() in suffixes:
                files.append(path)
            else:
                suffix = printable(path.suffix) or "none"
                article = "an" if kind[0] in "aeiou" else "a"
                skipped.add(split, key, path, f"not {article} {kind} file (suffix {suffix!r})")
        if files:
            classes[name] = files
        else:
            reason = f"empty class folder (no {kind} files): not made a class"
            skipped.add(split, f"{printable(name)}/", class_dir, reason)
    return classes


def class_folder_items(
    manual_dir: epath.Path, suffixes, *, skipped: SkipLog, builder: str, kind: str
) -> tuple[list[str], dict[str, list[Item]]]:
    """(class names, {split: items}) of `manual_dir/<split>/<class>/<file>`.

    Classes are the sorted non-empty class folders of `train`; keys are "<class>/<file name>"
    (names that are not UTF-8 in printable form; their files are read as named on disk).
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
    for name in list_names(manual_dir):
        entry = manual_dir / name
        if not entry.is_dir():
            continue
        if printable(name) != name:  # TFDS names splits with text
            reason = "a split folder whose name is not UTF-8: not built; rename it"
            skipped.add("train", f"{printable(name)}/", entry, reason)
            continue
        listed[name] = list_class_folders(entry, suffixes, split=name, skipped=skipped, kind=kind)
    class_names = sorted(printable(name) for name in listed["train"])
    if not class_names:
        raise ValueError(
            f"{builder}: no class folder with {kind} files in {os.fspath(train_dir)!r} "
            f"(layout <root>/<split>/<class>/<{kind}>)"
        )
    label_index = {name: i for i, name in enumerate(class_names)}
    splits = {}
    for split, classes in listed.items():
        items = []
        for class_folder, paths in classes.items():
            class_name = printable(class_folder)
            for path in paths:
                key = _printable_key(split, class_folder, path.name)
                if class_name in label_index:
                    items.append(Item(key, path, label_index[class_name]))
                else:
                    reason = f"class folder {class_name!r} is not one of the train classes"
                    skipped.add(split, key, path, reason)
        splits[split] = items
    return class_names, splits
