"""Dataset-builder machinery shared by the TFDS builders in datasets/<name>/.

  examples         Item, SkipItem, skipped_<split>.jsonl reports, one-process generation
  manual_builder   ManualDataBuilder base: manual_dir in, one example per file, local or Beam
  beam_examples    the same generation on Apache Beam workers (imports apache_beam)
  video_decode     decode video files with PyAV (short-side resize, fps subsampling)
  video_builder    VideoBuilder base: decode, JPEG frames (VideoExampleEncoder)
  image_examples   ImageExampleEncoder: images re-encoded as RGB JPEG
  class_folders    <split>/<class>/<file> trees; stray files and empty classes reported
  registry         find a builder by name (TFDS's registered ones, or datasets/<name>/ by path);
                   check_builder: unknown builder/config/version -> UnknownBuilderError
  synthetic_render the procedural clips and images of cover_synthetic
  video_writer     write small real videos (dummy data, tests)
  build            `python -m cover_tf.builders.build NAME[/CONFIG]`: prepare a dataset

Nothing here runs at import time; import the submodules you need.
"""
