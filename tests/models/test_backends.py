"""The model code is backend-neutral: on Keras' JAX backend the same weights give TensorFlow's logits.

`benchmarks/gpu_throughput.py` measures cover_tf on GPUs through Keras' JAX backend (TensorFlow
cannot be installed on the lent GPU machine); this test is what makes those figures figures of
this model: every weight perturbed (frame-wise and tubelet patch embeddings), the same inputs (clips, a 1-frame image, another clip length
and resolution, which resize the embeddings), and a training step whose gradients agree. On JAX
too, rematerialised blocks replay their drop path masks (gradients equal those without remat).
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from cover_tf.models import build_cover_model

CONFIG = dict(
    heads={"motion": 5, "images": 7},
    hidden_size=32,
    num_layers=2,
    num_heads=2,
    patch_size=8,
    num_frames=4,
    image_size=32,
)
INPUTS = {"clip": (2, 4, 32, 32, 3), "image": (2, 1, 32, 32, 3), "other_size": (1, 6, 48, 40, 3)}

JAX_SIDE = textwrap.dedent(
    """
    import json, sys
    import jax
    import keras
    import numpy as np
    from cover_tf.models import build_cover_model

    config, folder = json.loads(sys.argv[1]), sys.argv[2]
    model = build_cover_model(**config)
    model.load_weights(f"{folder}/model.weights.h5")
    inputs = np.load(f"{folder}/inputs.npz")
    results = {f"{name}/{head}": np.asarray(logits)
               for name in inputs.files for head, logits in model(inputs[name]).items()}

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    def loss_of(trainable, x):
        outputs, _ = model.stateless_call(trainable, non_trainable, x, training=True)
        return sum(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
            np.array([1, 3]), outputs[head], from_logits=True)) for head in sorted(outputs))
    grads = jax.grad(loss_of)(trainable, inputs["clip"])
    for variable, grad in zip(model.trainable_variables, grads):
        results[f"grad/{variable.path}"] = np.asarray(grad)

    # Rematerialised blocks replay their drop path masks on JAX too: same gradients as without.
    dropping = build_cover_model(**config, drop_path_rate=0.5)
    state = [v.value for v in dropping.non_trainable_variables]  # the masks' seed generators
    def sum_of_squares(trainable):
        outputs, _ = dropping.stateless_call(trainable, state, inputs["clip"], training=True)
        return sum(keras.ops.sum(logits**2) for logits in outputs.values())
    remat_grads = {}
    for remat in (False, True):
        dropping.backbone.remat = remat
        remat_grads[remat] = jax.jit(jax.grad(sum_of_squares))(
            [v.value for v in dropping.trainable_variables])
    for index, (plain, remat) in enumerate(zip(remat_grads[False], remat_grads[True])):
        results[f"remat/{index}"] = np.stack([np.asarray(plain), np.asarray(remat)])
    np.savez(f"{folder}/jax.npz", backend=keras.backend.backend(), **results)
    """
)


@pytest.mark.parametrize("tubelet_size", [1, 2])
def test_jax_backend_reproduces_tensorflow(tmp_path, tubelet_size):
    config = dict(CONFIG, tubelet_size=tubelet_size)
    model = build_cover_model(**config)
    rng = np.random.default_rng(0)
    for variable in model.weights:  # zero or unit defaults (temporal_fc, norms) hide nothing
        variable.assign(rng.normal(scale=0.2, size=variable.shape).astype("float32"))
    model.save_weights(tmp_path / "model.weights.h5")
    inputs = {name: rng.normal(size=shape).astype("float32") for name, shape in INPUTS.items()}
    np.savez(tmp_path / "inputs.npz", **inputs)

    expected = {
        f"{name}/{head}": logits.numpy()
        for name, frames in inputs.items()
        for head, logits in model(frames).items()
    }
    with tf.GradientTape() as tape:  # every head's loss, so that every weight gets a gradient
        outputs = model(inputs["clip"], training=True)
        loss = sum(
            tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(
                    np.array([1, 3]), outputs[head], from_logits=True
                )
            )
            for head in sorted(outputs)
        )
    for variable, grad in zip(
        model.trainable_variables, tape.gradient(loss, model.trainable_variables), strict=True
    ):
        expected[f"grad/{variable.path}"] = grad.numpy()

    environment = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run(
        [sys.executable, "-c", JAX_SIDE, json.dumps(config), str(tmp_path)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    jax_results = np.load(tmp_path / "jax.npz")
    assert str(jax_results["backend"]) == "jax"
    remat = [key for key in jax_results.files if key.startswith("remat/")]
    assert set(jax_results.files) - {"backend", *remat} == set(expected)
    assert remat
    for key in remat:  # [without remat, with remat]
        plain, rematerialised = jax_results[key]
        np.testing.assert_allclose(rematerialised, plain, atol=1e-5, err_msg=key)
    for key, value in expected.items():
        scale = max(np.abs(value).max(), 1e-3)
        np.testing.assert_allclose(
            jax_results[key], value, atol=2e-5 * scale, rtol=1e-4, err_msg=key
        )
