"""The library side of serving: head specs, SavedModel signatures, export, prediction, clients.

  heads        class names + eval preprocessing per head, from a workdir or a checkpoint
  signatures   the serving functions (input limits, eval_preprocess in the graph, outputs)
  exporter     export_model: versioned SavedModel with per-head signatures, self-check
  predictors   run a SavedModel export or a `.keras` model on decoded videos
  client       gRPC / REST requests to TF Serving and their answers

Nothing here runs at import time; import the submodules you need.
"""
