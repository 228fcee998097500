"""Requests to a TF Serving model server holding a CoVeR export, over gRPC or REST.

One video per request: uint8 frames [T, H, W, 3] go to signature `<head>` (input `frames`,
[1, T, H, W, 3]) or, JPEG-encoded, to `<head>_jpeg` (input `jpeg_frames`, [1, T]); the same
inputs go to `embedding` / `embedding_jpeg`. The answer is the signature's outputs as numpy
arrays; `top_classes` turns a head's into a list of classes (the one place that does, for the
in-process predictors too) and `embedding` a video's embedding into a float32 vector.

This module loads no model: a client machine needs TensorFlow only for the tensor protos.
"""

import base64
import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from cover_tf.serving import signatures

MAX_MESSAGE_BYTES = 512 * 1024 * 1024
TRANSPORTS = ("grpc", "rest")
REST_FORMATS = ("inputs", "instances")


class ServingError(Exception):
    """The server refused or failed a request; `code` is the gRPC status name or HTTP status."""

    def __init__(self, code, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def request_inputs(frames: np.ndarray, jpeg: bool, jpeg_quality: int = 90) -> dict:
    """{input name: batch of one video} for `<head>` (uint8) or `<head>_jpeg` (JPEG strings)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if not jpeg:
        return {signatures.FRAMES_INPUT: frames[None]}
    encoded = [tf.io.encode_jpeg(frame, quality=jpeg_quality).numpy() for frame in frames]
    return {signatures.JPEG_INPUT: np.array([encoded], dtype=object)}


def grpc_predict(address: str, model: str, signature: str, inputs: dict, timeout: float = 30.0):
    """Sends a PredictRequest to `address` ("host:port"); returns {output: np.ndarray}.

    Raises ServingError with the gRPC status (INVALID_ARGUMENT for a refused request).
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    options = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    with grpc.insecure_channel(address, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise ServingError(error.code().name, error.details() or "") from error
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def _json_value(value: np.ndarray):
    if value.dtype == object or value.dtype.kind == "S":
        return np.vectorize(lambda item: {"b64": base64.b64encode(item).decode()}, otypes=[object])(
            value
        ).tolist()
    return value.tolist()


def rest_body(signature: str, inputs: dict, rest_format: str = "inputs") -> dict:
    """TF Serving's REST predict body, columnar ("inputs") or row ("instances") format."""
    if rest_format == "inputs":
        return {
            "signature_name": signature,
            "inputs": {name: _json_value(value) for name, value in inputs.items()},
        }
    elif rest_format == "instances":
        batch = len(next(iter(inputs.values())))
        instances = [
            {name: _json_value(value[index]) for name, value in inputs.items()}
            for index in range(batch)
        ]
        return {"signature_name": signature, "instances": instances}
    else:
        raise ValueError(f"rest_format must be one of {REST_FORMATS}, got {rest_format!r}")


def rest_predict(
    url: str, model: str, signature: str, inputs: dict, rest_format="inputs", timeout=30.0
):
    """POSTs to `<url>/v1/models/<model>:predict`; returns {output: np.ndarray}.

    Raises ServingError with the HTTP status and the server's "error" text.
    """
    body = json.dumps(rest_body(signature, inputs, rest_format)).encode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/models/{model}:predict",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            text = json.loads(text).get("error", text)
        except json.JSONDecodeError:
            pass
        raise ServingError(error.code, text) from error
    if "outputs" in answer:
        outputs = answer["outputs"]
    elif "predictions" in answer:
        rows = answer["predictions"]
        outputs = {key: [row[key] for row in rows] for key in rows[0]}
    else:
        raise ServingError("bad_response", f"no outputs or predictions in {sorted(answer)}")
    return {name: np.asarray(value) for name, value in outputs.items()}


def rank_classes(probabilities, class_names, top: int) -> dict:
    """A head signature's ranking outputs, computed from `probabilities` [B, C] in numpy.

    Returns {"probabilities", "top_k_indices" [B, k], "top_k_classes" [B, k]} with k = min(top, C),
    ties broken by the lower index (as `tf.math.top_k`), for `top_classes`.
    """
    probabilities = np.asarray(probabilities)
    indices = np.argsort(-probabilities, axis=-1, kind="stable")[:, :top]
    return {
        "probabilities": probabilities,
        "top_k_indices": indices,
        "top_k_classes": np.asarray(class_names, dtype=object)[indices],
    }


def top_classes(outputs: dict, top: int | None = None, prefix: str = "", row: int = 0) -> list:
    """[{"index", "class", "probability"}] of video `row` from a head signature's outputs.

    `outputs` holds `<prefix>probabilities`, `<prefix>top_k_indices` and `<prefix>top_k_classes`
    (numpy arrays or tensors, class names as bytes or str); `top` cuts the list.
    """
    probabilities = np.asarray(outputs[prefix + "probabilities"])[row]
    indices = np.asarray(outputs[prefix + "top_k_indices"])[row][:top]
    classes = np.asarray(outputs[prefix + "top_k_classes"])[row][:top]
    return [
        {
            "index": int(index),
            "class": name.decode() if isinstance(name, bytes) else str(name),
            "probability": float(probabilities[index]),
        }
        for index, name in zip(indices, classes, strict=True)
    ]


def embedding(outputs: dict) -> np.ndarray:
    """The `embedding` signature's answer as float32 [B, D] (L2-normalised rows)."""
    return np.asarray(outputs[signatures.EMBEDDING_OUTPUT], dtype=np.float32)
