"""Shared test set-up: quiet TensorFlow, offline HF, and cover_tf loaded before any test module's
TensorFlow import, so that the tests run with the oneDNN setting users get (`cover_tf.cpu`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import cover_tf  # noqa: E402, F401
