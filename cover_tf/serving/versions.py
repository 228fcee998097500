"""TF Serving's versioned export layout on any filesystem tf.io.gfile reaches.

An export base (TF Serving's `base_path`) holds one folder per version, `<base>/<N>/`. A version
is published only once it was written and checked: on a local disk the checked staging folder is
renamed into place (atomic); on an object store (`gs://`, `s3://`, `ram://`), where no rename is
atomic, its files are copied into `<base>/<N>/` with `saved_model.pb` after the variables and the
metadata file `assets.extra/cover_tf_export.json` last, as the version's completion marker.
Readers here take the highest version that has the marker, so a half-copied version is never
used; TF Serving fails to load a version without `saved_model.pb` and retries it.
"""

import os

import tensorflow as tf

from cover_tf.serving.heads import SourceError
from cover_tf.workdir import is_local, join

METADATA_FILE = "assets.extra/cover_tf_export.json"
SAVED_MODEL_FILE = "saved_model.pb"


def existing_versions(base) -> list[int]:
    """The numeric version folders under an export base, sorted (TF Serving's layout)."""
    base = str(base)
    if not tf.io.gfile.isdir(base):
        return []
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(base))
    return sorted(int(name) for name in names if name.isdigit())


def next_version(base) -> int:
    """1 + the highest existing version under `base` (1 for a new base)."""
    versions = existing_versions(base)
    return versions[-1] + 1 if versions else 1


def resolve_export(path) -> str:
    """A SavedModel folder: `path` itself, or the highest complete version under an export base.

    Raises SourceError naming the path when it holds neither.
    """
    path = str(path).rstrip("/")
    if tf.io.gfile.exists(join(path, SAVED_MODEL_FILE)):
        return path
    if not tf.io.gfile.isdir(path):
        raise SourceError(f"the export {path!r} does not exist")
    for version in reversed(existing_versions(path)):
        folder = join(path, str(version))
        if tf.io.gfile.exists(join(folder, METADATA_FILE)) and tf.io.gfile.exists(
            join(folder, SAVED_MODEL_FILE)
        ):
            return folder
    raise SourceError(
        f"{path!r} is neither a SavedModel nor an export base with a complete version "
        f"(<N>/{SAVED_MODEL_FILE} and <N>/{METADATA_FILE})"
    )


MAX_DEPTH = 8  # a SavedModel's files are at most 2 folders deep


def files_under(root) -> list[str]:
    """Every file under `root`, as paths relative to it.

    Globs one level deeper at a time rather than `tf.io.gfile.walk`, which misses the implicit
    folders of object stores such as TF's `ram://` (their listing shows files only).
    """
    root = str(root).rstrip("/")
    found = set()
    for depth in range(1, MAX_DEPTH + 1):
        for match in tf.io.gfile.glob(root + "/*" * depth):
            if not tf.io.gfile.isdir(match):
                found.add(match[len(root) + 1 :])
    return sorted(found)


def remove_tree(root) -> None:
    """Deletes `root` and everything under it (file by file: see `files_under`)."""
    root = str(root).rstrip("/")
    for name in files_under(root):
        tf.io.gfile.remove(join(root, name))
    try:
        tf.io.gfile.rmtree(root)  # the folders left (object stores: often none to delete)
    except tf.errors.NotFoundError:
        pass


def size_bytes(root) -> int:
    return sum(tf.io.gfile.stat(join(root, name)).length for name in files_under(root))


def publish(staging, target) -> None:
    """Makes the checked `staging` folder the version folder `target` (see the module doc)."""
    staging, target = str(staging), str(target)
    if is_local(target):
        os.replace(staging, target)
        return
    files = files_under(staging)
    last = [name for name in (SAVED_MODEL_FILE, METADATA_FILE) if name in files]
    for name in [name for name in files if name not in last] + last:
        tf.io.gfile.makedirs(join(target, os.path.dirname(name)) if "/" in name else target)
        tf.io.gfile.copy(join(staging, name), join(target, name), overwrite=False)
    remove_tree(staging)
