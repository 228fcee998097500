"""The canonical weight layout every checkpoint source is mapped onto, and its assignment.

Canonical weights are a dict of NumPy arrays in Keras kernel orientation:
    cls [1,1,D]; pos [1,N+1,D]; time [1,T,D] (video checkpoints); patch/kernel [P,P,3,D]
    ([k,P,P,3,D] for a tubelet embedding; a 2-D kernel fills a tubelet's central frame slice);
    patch/bias [D]; final_norm/{gamma,beta}; and per block i, `block_i/<part>/...` with the
    parts of its attention branches (`cover_tf.layers.ATTENTION_SPECS`): `<branch>_norm`,
    `<branch>_attention/{qkv,proj}/{kernel,bias}`, `temporal_fc/{kernel,bias}`; and mlp_norm,
    mlp_dense_1, mlp_dense_2.
"""

import numpy as np
import tensorflow as tf


class CheckpointMismatchError(ValueError):
    """A checkpoint parameter whose shape does not fit the model's."""


def backbone_variables(backbone):
    """`{canonical name: keras.Variable}` of a built backbone."""
    embedding = backbone.patch_embedding
    variables = {
        "cls": embedding.cls_token,
        "pos": embedding.position_embedding,
        "patch/kernel": embedding.projection.kernel,
        "patch/bias": embedding.projection.bias,
        "final_norm/gamma": backbone.final_norm.gamma,
        "final_norm/beta": backbone.final_norm.beta,
    }
    if embedding.time_embedding is not None:
        variables["time"] = embedding.time_embedding
    for index, block in enumerate(backbone.blocks):
        prefix = f"{block.name}/"
        for variable in block.weights:
            path = variable.path
            variables[f"block_{index}/" + path[path.index(prefix) + len(prefix) :]] = variable
    return variables


def assign_backbone_weights(backbone, canonical, allow_missing=("time",)):
    """Assigns canonical weights to a built backbone; every shape is checked.

    Model parameters absent from `canonical` raise, except those named in `allow_missing`, which
    keep their initial values (the zero-initialised time embedding and `temporal_fc` of a
    video model made from an image checkpoint).
    """
    if not backbone.built:
        backbone.build()
    variables = backbone_variables(backbone)
    unused = sorted(set(canonical) - set(variables))
    if unused:
        raise CheckpointMismatchError(f"checkpoint parameters with no place in the model: {unused}")
    for name, variable in variables.items():
        if name not in canonical:
            if any(name == allowed or name.startswith(f"{allowed}") for allowed in allow_missing):
                continue
            raise CheckpointMismatchError(
                f"model parameter {name!r} {tuple(variable.shape)} is not in the checkpoint"
            )
        value = canonical[name]
        if name == "patch/kernel":
            value = inflate_patch_kernel(value, tuple(variable.shape))
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointMismatchError(
                f"parameter {name!r}: checkpoint shape {tuple(value.shape)} does not fit the "
                f"model's shape {tuple(variable.shape)}"
            )
        variable.assign(value)
    return backbone


def inflate_patch_kernel(kernel, shape):
    """A frame-wise patch kernel `[P, P, C, D]` shaped for a tubelet projection `shape`
    `[k, P, P, C, D]`: the central frame slice (index (k - 1) // 2, the frame the token belongs
    to) holds it and the other slices are zero, so the video model starts equal to the frame-wise
    one (ViViT's central-frame initialisation). Any other pair of shapes passes unchanged."""
    if len(shape) != 5 or np.ndim(kernel) != 4 or tuple(shape[1:]) != tuple(np.shape(kernel)):
        return kernel
    inflated = np.zeros(shape, np.asarray(kernel).dtype)
    inflated[(shape[0] - 1) // 2] = kernel
    return inflated


def resize_position_embedding(pos, grid_size):
    """`[1, 1 + g*g, D]` position embedding resized to a `grid_size` grid by 2-D bilinear."""
    old_grid = int(round((pos.shape[1] - 1) ** 0.5))
    if old_grid**2 != pos.shape[1] - 1:
        raise CheckpointMismatchError(f"position embedding {pos.shape} is not a square grid + CLS")
    if old_grid == grid_size:
        return pos
    grid = pos[:, 1:].reshape(1, old_grid, old_grid, -1)
    grid = tf.image.resize(grid, (grid_size, grid_size), method="bilinear").numpy()
    return np.concatenate([pos[:, :1], grid.reshape(1, grid_size * grid_size, -1)], axis=1)


def resize_time_embedding(time, num_frames):
    """`[1, T0, D]` time embedding resized to `num_frames` steps by linear interpolation."""
    if time.shape[1] == num_frames:
        return time
    resized = tf.image.resize(time[:, :, None, :], (num_frames, 1), method="bilinear").numpy()
    return resized[:, :, 0, :]


def load_backbone_from_model(model, source, heads=True):
    """Copies a CoVeR `source` model's backbone into `model` (embeddings resized to `model`'s
    image size and clip length), and with `heads` the heads whose name and class count match;
    returns the names of the heads loaded."""
    canonical = {
        name: variable.numpy() for name, variable in backbone_variables(source.backbone).items()
    }
    backbone = model.backbone
    canonical["pos"] = resize_position_embedding(
        canonical["pos"], backbone.image_size // backbone.patch_size
    )
    if "time" in canonical and backbone.patch_embedding.time_embedding is not None:
        canonical["time"] = resize_time_embedding(
            canonical["time"], backbone.patch_embedding.time_steps
        )
    assign_backbone_weights(backbone, canonical, allow_missing=())
    loaded = []
    for name, head in model.heads.items():
        if heads and source.head_classes.get(name) == model.head_classes[name]:
            head.set_weights(source.heads[name].get_weights())
            loaded.append(name)
    return loaded
