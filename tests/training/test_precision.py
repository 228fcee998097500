"""A CPU-only run asked for mixed_bfloat16 trains in float32 where bfloat16 would be emulated."""

from cover_tf.cpu import cpu_flags
from cover_tf.training.precision import effective_precision

AVX2_EPYC = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma\n"
ZEN4_EPYC = "model name\t: AMD EPYC 9B14\nflags\t\t: fpu avx2 avx512f avx512_bf16 fma\n"
SAPPHIRE = "model name\t: Intel Xeon Platinum 8481C\nflags\t\t: avx2 avx512f amx_bf16 amx_tile\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def write(tmp_path, text):
    path = tmp_path / "cpuinfo"
    path.write_text(text + text)  # two cores
    return str(path)


def test_emulated_bf16_falls_back_to_float32_and_says_so(tmp_path, caplog):
    assert effective_precision("mixed_bfloat16", write(tmp_path, AVX2_EPYC)) == "float32"
    assert "AMD EPYC 7B13" in caplog.text and "trains in float32" in caplog.text


def test_native_bf16_and_other_precisions_are_kept(tmp_path):
    for text in (ZEN4_EPYC, SAPPHIRE, GRAVITON3):
        assert effective_precision("mixed_bfloat16", write(tmp_path, text)) == "mixed_bfloat16"
    for precision in ("float32", "mixed_float16"):
        assert effective_precision(precision, write(tmp_path, AVX2_EPYC)) == precision
    assert effective_precision("mixed_bfloat16", str(tmp_path / "absent")) == "mixed_bfloat16"


def test_cpu_flags_reads_model_and_flags(tmp_path):
    model, flags = cpu_flags(write(tmp_path, ZEN4_EPYC))
    assert model == "AMD EPYC 9B14" and {"avx512_bf16", "avx2"} <= flags
