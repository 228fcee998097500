"""ViT size variants ("Ti/16", "S/16", "B/16", "L/16") as TimeSformer backbone arguments."""

# width, depth, heads of the ViT family (Dosovitskiy et al., 2021; Steiner et al., 2021).
VARIANT_SIZES = {
    "Ti": {"hidden_size": 192, "num_layers": 12, "num_heads": 3},
    "S": {"hidden_size": 384, "num_layers": 12, "num_heads": 6},
    "B": {"hidden_size": 768, "num_layers": 12, "num_heads": 12},
    "L": {"hidden_size": 1024, "num_layers": 24, "num_heads": 16},
    "H": {"hidden_size": 1280, "num_layers": 32, "num_heads": 16},
}


def decode_variant(variant):
    """Backbone arguments of a variant string `"<size>/<patch>"`, e.g. `"B/16"`.

    Returns a dict with `hidden_size`, `num_layers`, `num_heads`, `mlp_dim` (4x width) and
    `patch_size`. Raises ValueError naming the allowed sizes for an unknown string.
    """
    size, sep, patch = str(variant).partition("/")
    if size not in VARIANT_SIZES or not sep or not patch.isdigit():
        raise ValueError(
            f"variant must look like '<size>/<patch>' with size in {sorted(VARIANT_SIZES)} "
            f"(e.g. 'B/16'), got {variant!r}"
        )
    arguments = dict(VARIANT_SIZES[size])
    arguments["mlp_dim"] = 4 * arguments["hidden_size"]
    arguments["patch_size"] = int(patch)
    return arguments
