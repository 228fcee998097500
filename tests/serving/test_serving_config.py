"""export/models.config and export/batching.config parse as TF Serving reads them."""

import re

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from cover_tf.serving.signatures import ServingLimits
from tests.serving.conftest import REPO

# The fields of TF Serving's BatchingParameters (session_bundle_config.proto), whose Python
# module tensorflow-serving-api does not ship.
BATCHING_FIELDS = {
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
    "thread_pool_name",
    "allowed_batch_sizes",
    "pad_variable_length_inputs",
    "enable_large_batch_splitting",
}


def test_models_config_parses_as_model_server_config():
    config = text_format.Parse(
        (REPO / "export" / "models.config").read_text(), model_server_config_pb2.ModelServerConfig()
    )
    (model,) = config.model_config_list.config
    assert model.name == "cover" and model.base_path.startswith("/")
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.latest.num_versions == 1


def test_batching_config_fields_and_batch_size_within_the_export_limit():
    text = (REPO / "export" / "batching.config").read_text()
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    fields = dict(
        re.match(r"^(\w+)\s*(?:\{\s*value:\s*(\d+)\s*\}|:\s*(\w+))$", line).group(1, 2)
        for line in lines
        if line
    )
    assert set(fields) <= BATCHING_FIELDS
    assert int(fields["max_batch_size"]) <= ServingLimits().max_batch
