"""TEST DOUBLES of TF Serving's model server (no TF Serving binary can be installed here).

`PredictionServiceDouble` implements `PredictionService.Predict` over gRPC and `RestDouble`
`POST /v1/models/<name>:predict` over HTTP, both by calling the loaded SavedModel's signatures,
as the model server does. They listen on 127.0.0.1 only, on an ephemeral port, and stop at the
end of the test that started them. Status mapping follows TF Serving: an InvalidArgument from
the graph is gRPC INVALID_ARGUMENT / HTTP 400 {"error": message}; an unknown model NOT_FOUND /
404; an unknown signature or input name INVALID_ARGUMENT / 400.
"""

import base64
import concurrent.futures
import contextlib
import http.server
import json
import re
import threading

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

LOCALHOST = "127.0.0.1"


class InvalidRequest(Exception):
    """A request the model server refuses before or while running the signature."""


class SignatureRunner:
    """Runs one SavedModel's signatures on numpy inputs, refusing bad requests like TF Serving."""

    def __init__(self, model_name: str, export_path, version: int):
        self.model_name = model_name
        self.version = version
        self.loaded = tf.saved_model.load(str(export_path))

    def input_specs(self, signature_name: str) -> dict:
        if signature_name not in self.loaded.signatures:
            raise InvalidRequest(f'Serving signature key "{signature_name}" not found.')
        return self.loaded.signatures[signature_name].structured_input_signature[1]

    def run(self, signature_name: str, inputs: dict) -> dict:
        specs = self.input_specs(signature_name)
        if set(inputs) != set(specs):
            raise InvalidRequest(
                f"input names {sorted(inputs)} do not match signature inputs {sorted(specs)}"
            )
        try:
            outputs = self.loaded.signatures[signature_name](
                **{name: tf.constant(value) for name, value in inputs.items()}
            )
        except tf.errors.InvalidArgumentError as error:
            raise InvalidRequest(error.message) from error
        return {name: value.numpy() for name, value in outputs.items()}


class PredictionServiceDouble(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TEST DOUBLE of TF Serving's gRPC PredictionService: Predict only, over one SavedModel."""

    def __init__(self, runner: SignatureRunner):
        self.runner = runner

    def Predict(self, request, context):  # noqa: N802 (the gRPC method name)
        if request.model_spec.name != self.runner.model_name:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Latest({request.model_spec.name})",
            )
        signature = request.model_spec.signature_name or "serving_default"
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        try:
            outputs = self.runner.run(signature, inputs)
        except InvalidRequest as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.runner.model_name
        response.model_spec.signature_name = signature
        response.model_spec.version.value = self.runner.version
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response


@contextlib.contextmanager
def grpc_double(runner: SignatureRunner):
    """Serves a PredictionServiceDouble on 127.0.0.1:<ephemeral>; yields "127.0.0.1:<port>"."""
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=2),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServiceDouble(runner), server
    )
    port = server.add_insecure_port(f"{LOCALHOST}:0")
    server.start()
    try:
        yield f"{LOCALHOST}:{port}"
    finally:
        server.stop(grace=None).wait(timeout=10)


def _from_json(value, dtype: tf.DType) -> np.ndarray:
    """A JSON tensor as TF Serving's REST API reads it: {"b64": ...} for binary strings."""
    if dtype == tf.string:
        decode = np.vectorize(
            lambda item: base64.b64decode(item["b64"]) if isinstance(item, dict) else item.encode(),
            otypes=[object],
        )
        return decode(np.array(value, dtype=object))
    array = np.asarray(value)
    if array.dtype.kind not in "iufb" or (dtype.is_integer and array.dtype.kind == "f"):
        raise InvalidRequest(f"Expects {dtype.name} values, got JSON values of {array.dtype}")
    if dtype.is_integer and array.size and (array.min() < dtype.min or array.max() > dtype.max):
        raise InvalidRequest(f"JSON values out of range for {dtype.name}")
    return array.astype(dtype.as_numpy_dtype)


def _to_json(value: np.ndarray):
    if value.dtype == object or value.dtype.kind == "S":
        return np.vectorize(lambda item: item.decode(), otypes=[object])(value).tolist()
    return value.tolist()


def rest_predict(runner: SignatureRunner, body: dict) -> dict:
    """TF Serving's REST predict: row ("instances") or columnar ("inputs") format."""
    signature = body.get("signature_name", "serving_default")
    specs = runner.input_specs(signature)
    if "inputs" in body:
        columns = body["inputs"]
        if not isinstance(columns, dict):
            (name,) = specs
            columns = {name: columns}
    elif "instances" in body:
        rows = body["instances"]
        if rows and not isinstance(rows[0], dict):
            (name,) = specs
            rows = [{name: row} for row in rows]
        columns = {name: [row[name] for row in rows] for name in (rows[0] if rows else {})}
    else:
        raise InvalidRequest('JSON body needs "instances" or "inputs"')
    inputs = {}
    for name, value in columns.items():
        if name not in specs:
            raise InvalidRequest(f"unknown input {name!r}; the signature has {sorted(specs)}")
        inputs[name] = _from_json(value, specs[name].dtype)
    outputs = runner.run(signature, inputs)
    if "inputs" in body:
        return {"outputs": {name: _to_json(value) for name, value in outputs.items()}}
    batch = len(next(iter(outputs.values())))
    return {
        "predictions": [
            {name: _to_json(value[index]) for name, value in outputs.items()}
            for index in range(batch)
        ]
    }


def _rest_handler(runner: SignatureRunner):
    path_pattern = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")

    class Handler(http.server.BaseHTTPRequestHandler):
        """TEST DOUBLE of TF Serving's REST predict endpoint."""

        def _answer(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):  # noqa: N802 (http.server's method name)
            match = path_pattern.match(self.path)
            if not match or match.group(1) != runner.model_name:
                self._answer(404, {"error": f"Servable not found for request: {self.path}"})
                return
            length = int(self.headers.get("Content-Length", 0))
            try:
                body = json.loads(self.rfile.read(length))
                self._answer(200, rest_predict(runner, body))
            except (InvalidRequest, json.JSONDecodeError, KeyError, ValueError) as error:
                self._answer(400, {"error": str(error)})

        def log_message(self, format, *args):  # noqa: A002 (keep test output quiet)
            pass

    return Handler


@contextlib.contextmanager
def rest_double(runner: SignatureRunner):
    """Serves the REST double on 127.0.0.1:<ephemeral>; yields "http://127.0.0.1:<port>"."""
    server = http.server.ThreadingHTTPServer((LOCALHOST, 0), _rest_handler(runner))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOCALHOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
