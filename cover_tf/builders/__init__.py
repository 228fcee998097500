"""Dataset-builder machinery shared by the TFDS builders in datasets/<name>/.

  video_decode     decode video files with PyAV (short-side resize, fps subsampling)
  video_builder    VideoBuilder base: decode, JPEG frames, skip and report bad files
  registry         find a builder by name (TFDS's registered ones, or datasets/<name>/ by path)
  synthetic_render the procedural clips and images of cover_synthetic
  video_writer     write small real videos (dummy data, tests)
  build            `python -m cover_tf.builders.build NAME[/CONFIG]`: prepare a dataset

Nothing here runs at import time; import the submodules you need.
"""
