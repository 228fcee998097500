"""The library side of serving: head specs, SavedModel signatures, export, prediction, clients.

  heads        class names + eval preprocessing per head, from a workdir or a checkpoint
  limits       the largest request (shape limits, a byte budget from the server's memory)
  signatures   the list of serving signatures (input checks, eval_preprocess in the graph,
               `cover_tf.models.multiview` for the answers) and each one's eager reference
  exporter     export_model: versioned SavedModel with every listed signature, self-check
  versions     TF Serving's version folders on any filesystem; publishing a checked version
  predictors   run a SavedModel export or a `.keras` model on decoded videos (predict, embed)
  client       gRPC / REST requests to TF Serving and their answers (top classes, embeddings)

Nothing here runs at import time; import the submodules you need.
"""
