"""Finding dataset builders by name: TFDS's registered ones, and this project's datasets/<name>/.

The project's builders live outside the importable package (`datasets/` must not become a
top-level `datasets` module), so they are imported by path, under the module name
`cover_tf_datasets.<name>.<name>_dataset_builder`, which registers them with TFDS. The folder is
`$COVER_TF_DATASETS_DIR` if set, else `datasets/` next to the `cover_tf` package (the editable
install from the source checkout).

    check_builder("kinetics/500")   # UnknownBuilderError: ... valid configs: 400, 600, 700
    builder = get_builder("kinetics/400", data_dir="~/tensorflow_datasets", short_side=128)
"""

import importlib.machinery
import importlib.util
import os
import pathlib
import sys
import types

import tensorflow_datasets as tfds

import cover_tf

DATASETS_DIR_ENV = "COVER_TF_DATASETS_DIR"
MODULE_PREFIX = "cover_tf_datasets"


class UnknownBuilderError(ValueError, FileNotFoundError):
    """A builder name, config or version that neither this project nor TFDS knows.

    The message is one sentence listing the valid names (or configs, versions). A ValueError;
    also a FileNotFoundError, which `get_builder` raised for unknown names before.
    """


def datasets_dir() -> pathlib.Path:
    """The folder holding one sub-folder per project builder."""
    if os.environ.get(DATASETS_DIR_ENV):
        return pathlib.Path(os.environ[DATASETS_DIR_ENV]).expanduser().resolve()
    return pathlib.Path(cover_tf.__file__).resolve().parents[1] / "datasets"


def builder_dir(name: str) -> pathlib.Path:
    """The folder of the project builder `name` (no config part); UnknownBuilderError if absent."""
    name = name.split("/")[0].split(":")[0]
    path = datasets_dir() / name / f"{name}_dataset_builder.py"
    if not path.is_file():
        raise UnknownBuilderError(
            f"Unknown dataset builder {name!r}: this project's builders are "
            f"{', '.join(available_builders()) or 'none'} (each a "
            f"<name>/<name>_dataset_builder.py in {str(datasets_dir())!r}; ${DATASETS_DIR_ENV} "
            f"moves that folder), or any TFDS builder such as 'imagenet2012'."
        )
    return path.parent


def available_builders() -> list[str]:
    """Names of the project builders found in `datasets_dir()`."""
    root = datasets_dir()
    if not root.is_dir():
        return []
    return sorted(
        p.parent.name
        for p in root.glob("*/*_dataset_builder.py")
        if p.stem == f"{p.parent.name}_dataset_builder"
    )


def _ensure_package(module_name: str, path: pathlib.Path) -> None:
    if module_name in sys.modules:
        return
    init = path / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(
            module_name, init, submodule_search_locations=[str(path)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    else:  # A namespace package over one folder (TFDS finds files through its loader).
        loader = importlib.machinery.NamespaceLoader(
            module_name, [str(path)], importlib.machinery.PathFinder._get_spec
        )
        spec = importlib.machinery.ModuleSpec(module_name, loader, is_package=True)
        spec.submodule_search_locations = [str(path)]
        sys.modules[module_name] = importlib.util.module_from_spec(spec)


def load_builder_module(name: str) -> types.ModuleType:
    """Imports datasets/<name>/<name>_dataset_builder.py once per process (registering it)."""
    folder = builder_dir(name)
    name = folder.name
    module_name = f"{MODULE_PREFIX}.{name}.{name}_dataset_builder"
    if module_name in sys.modules:
        return sys.modules[module_name]
    _ensure_package(MODULE_PREFIX, folder.parent)
    _ensure_package(f"{MODULE_PREFIX}.{name}", folder)
    spec = importlib.util.spec_from_file_location(
        module_name, folder / f"{name}_dataset_builder.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def check_builder(name: str) -> type[tfds.core.DatasetBuilder]:
    """The builder class of `name` ("kinetics/400:1.0.0"); UnknownBuilderError if any part is unknown.

    Cheap: imports the builder's module (project builders) but creates no builder and touches no
    data_dir. Call it before anything is written.
    """
    base = name.split("/")[0].split(":")[0]
    if not base:
        raise UnknownBuilderError(f"Empty dataset builder name {name!r}.")
    if base in tfds.list_builders(with_community_datasets=False):
        builder_cls = tfds.builder_cls(base)
    else:
        load_builder_module(base)
        builder_cls = tfds.builder_cls(base)
    config, _, version = name[len(base) :].lstrip("/").partition(":")
    configs = {c.name: c for c in builder_cls.BUILDER_CONFIGS or []}
    if config and config not in configs:
        valid = f"valid configs: {', '.join(configs)}" if configs else "it has no configs"
        raise UnknownBuilderError(
            f"Unknown config {config!r} of dataset builder {base!r}: {valid}."
        )
    if version and "*" not in version:
        # A config may carry its own version (cover_synthetic's `*_2_2` configs are 2.2.0).
        own = getattr(configs.get(config), "version", None)
        versions = [str(own or builder_cls.VERSION)] + [
            str(v) for v in getattr(builder_cls, "SUPPORTED_VERSIONS", []) or []
        ]
        if version not in versions:
            raise UnknownBuilderError(
                f"Unknown version {version!r} of dataset builder {base!r}: "
                f"valid versions: {', '.join(versions)}."
            )
    return builder_cls


def get_builder(name: str, data_dir=None, **kwargs) -> tfds.core.DatasetBuilder:
    """A builder from a TFDS name with optional config and version ("kinetics/400:1.0.0").

    Names TFDS already knows (e.g. "imagenet2012", or a project builder already imported) go to
    `tfds.builder`; others are imported from `datasets_dir()` first. `kwargs` go to the builder
    (e.g. short_side=, fps= for the video builders).

    Raises:
      UnknownBuilderError: the name is neither registered with TFDS nor a folder in
        datasets_dir(), or its config or version is not one of the builder's.
    """
    check_builder(name)
    if data_dir is not None:
        kwargs["data_dir"] = os.fspath(os.path.expanduser(data_dir))
    return tfds.builder(name, **kwargs)
