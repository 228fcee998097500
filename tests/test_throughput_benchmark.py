"""`benchmarks/throughput.py` names its machine (CPU, oneDNN version, date, commit) and measures its
peaks before any figure, keeps one JSON-lines file per machine and day, and ends with one sentence
and a non-zero exit where its `--peer` cannot run. Its timings are not asserted."""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import throughput  # noqa: E402


def test_machine_names_carry_the_widest_isa():
    assert throughput.machine_name("AMD EPYC 9B14", {"avx2", "avx512f", "avx512_bf16"}) == (
        "amd-epyc-9b14_avx512bf16"
    )
    assert throughput.machine_name("AMD EPYC", {"avx2", "fma"}) == "amd-epyc_avx2"
    xeon = "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert throughput.machine_name(xeon, {"avx512f", "avx512_bf16", "amx_bf16"}).endswith("_amx")


def test_peak_sizes_are_squares_or_m_k_n_products_and_a_bad_one_names_itself(capsys):
    assert throughput.matmul_shape("128") == (128, 128, 128)
    assert throughput.matmul_shape("8192x3072x768") == (8192, 3072, 768)
    assert throughput.parse_args(["--peak-sizes", "256,64x128x32"]).peak_sizes == [
        "256",
        "64x128x32",
    ]
    with pytest.raises(SystemExit):
        throughput.parse_args(["--peak-sizes", "1024,12x3"])
    assert "'12x3' is neither N nor MxKxN" in capsys.readouterr().err


def test_first_line_names_the_machine_and_its_measured_peaks(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "throughput.py"), "--configs", "tiny", "--modes",
         "infer", "--precisions", "fp32", "--xla", "off", "--steps", "1", "--warmup", "0",
         "--repeats", "1", "--peak-sizes", "128,256,64x128x32", "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    machine = lines[0]
    assert machine["kind"] == "machine"
    for field in ("cpu_model", "cores", "avx512f", "avx512_bf16", "amx", "machine", "commit"):
        assert field in machine, field
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", machine["date"]) and machine["tensorflow"]
    assert machine["command"].startswith("python benchmarks/throughput.py --configs tiny")
    if machine["onednn"]:  # the oneDNN TensorFlow runs, beside TensorFlow's version
        assert re.fullmatch(r"\d+\.\d+(\.\d+)*", machine["onednn_version"])
    assert machine["peak_fp32_gflops"] > 0 and machine["peak_bf16_gflops"] > 0
    # the TF workers load TF as the product does: oneDNN on wherever cover_tf turns it on
    if "avx2" in machine["isa"] and os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0":
        assert machine["onednn"] is True
    by_size = machine["peaks_by_size"]["tf_fp32"]
    assert set(by_size) == {"128", "256", "64x128x32"}  # squares and an M x K x N product
    assert machine["peak_fp32_gflops"] == max(by_size.values())
    bf16_sizes = set(machine["peaks_by_size"]["tf_bf16"])  # emulated bf16: the first size only
    assert bf16_sizes == (
        {"128", "256", "64x128x32"} if machine["avx512_bf16"] or machine["amx"] else {"128"}
    )
    measurement = next(line for line in lines if line["kind"] == "measurement")
    assert "error" not in measurement and measurement["mfu"] > 0
    saved = list(tmp_path.glob(f"{machine['machine']}_{machine['date']}.jsonl"))
    assert len(saved) == 1
    assert [json.loads(line) for line in saved[0].read_text().splitlines()] == lines


NO_TORCH = "import sys; sys.modules['torch'] = None\n"  # `import torch` fails from then on


def run_without_torch(tmp_path, script, *args):
    """`script` in a Python whose every process (the peer's too) cannot import torch."""
    (tmp_path / "sitecustomize.py").write_text(NO_TORCH)
    environment = dict(os.environ, PYTHONPATH=str(tmp_path))
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], env=environment,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def one_sentence(stderr, prog):
    (line,) = stderr.strip().splitlines()  # nothing else: no traceback, no progress
    assert line.startswith(f"{prog}: error: ") and "pip install -e '.[test]'" in line
    return line


@pytest.mark.parametrize("script", ["throughput.py", "serving_throughput.py"])
def test_peer_without_torch_ends_with_one_sentence_and_no_ratio(tmp_path, script):
    done = run_without_torch(tmp_path, script, "--configs", "tiny", "--peer")
    assert done.returncode == 2 and done.stdout == ""
    assert "cannot import torch" in one_sentence(done.stderr, script)


def test_peer_without_torch_in_this_process_alone_still_ends(tmp_path):
    wrapper = NO_TORCH + (
        f"sys.argv = ['throughput.py', '--configs', 'tiny', '--peer']\n"
        f"import runpy; runpy.run_path({str(BENCHMARKS / 'throughput.py')!r}, run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert "cannot import torch" in one_sentence(done.stderr, "throughput.py")


def test_the_peer_script_without_torch_exits_2_with_one_sentence(tmp_path):
    done = run_without_torch(tmp_path, "peer_timesformer.py", "--configs", "tiny")
    assert done.returncode == 2 and done.stdout == ""
    assert "importing torch failed" in one_sentence(done.stderr, "peer_timesformer.py")


def test_a_failed_peer_run_raises_its_own_sentence(tmp_path, monkeypatch, capsys):
    failing = tmp_path / "peer.py"
    failing.write_text(
        "import sys\nprint('[peer] tiny infer fp32 ...', file=sys.stderr)\n"
        "print('peer_timesformer.py: error: tiny infer fp32 failed: out of memory', file=sys.stderr)\n"
        "sys.exit(1)\n"
    )  # fmt: skip
    monkeypatch.setattr(throughput, "PEER_SCRIPT", str(failing))
    args = throughput.parse_args(["--configs", "tiny", "--peer"])
    with pytest.raises(throughput.PeerError) as error:
        throughput.run_peer(args, "fp32", "tiny")
    assert str(error.value) == "the HF peer failed (tiny, fp32): tiny infer fp32 failed: out of memory"  # fmt: skip
    assert "[peer] tiny infer fp32 ..." in capsys.readouterr().err  # its progress is relayed


def cell_round(ours_clips, peer_clips, mode="train"):
    """One round's summaries for one cell (tiny fp32), built from lines shaped as `measure` and
    the peer script write them."""
    ours = {("tiny", mode, "fp32"): [{"xla": "off", "clips_per_s": ours_clips, "batch": 8,
                                       "gflop_per_clip": 2.1, "mfu": 0.5}]}  # fmt: skip
    peer = {"config": "tiny", "precision": "fp32", f"{mode}_clips_per_s_runs": [peer_clips]}
    return throughput.summarize(ours, [peer])


def test_rounds_pair_ours_with_the_peer_run_beside_it_and_carry_an_interval():
    # the VM slows both by half in round 2: paired ratios stay 1.2, unpaired ones would not
    rounds = [cell_round(12.0, 10.0), cell_round(6.0, 5.0), cell_round(13.2, 11.0)]
    (cell,) = throughput.round_intervals(rounds)
    assert cell["rounds"] == 3 and cell["ratios"] == pytest.approx([1.2, 1.2, 1.2])
    assert cell["ratio"] == pytest.approx(1.2)
    assert cell["low"] == pytest.approx(1.2) and cell["high"] == pytest.approx(1.2)
    assert cell["ours_clips_per_s_median"] == 12.0 and cell["peer_clips_per_s_median"] == 10.0
    # spread over rounds widens the interval around the geometric mean of the ratios
    (noisy,) = throughput.round_intervals(
        [cell_round(12.0, 10.0), cell_round(9.0, 10.0), cell_round(15.0, 10.0)]
    )
    assert noisy["ratio"] == pytest.approx((1.2 * 0.9 * 1.5) ** (1 / 3))
    assert noisy["low"] < 0.9 < 1.5 < noisy["high"]
    table = throughput.markdown_table(rounds)
    assert "| 1.20 [1.20, 1.20] |" in table and "Medians of 3 rounds" in table


def test_a_cell_the_peer_missed_in_a_round_gets_no_interval():
    missed = throughput.summarize(
        {
            ("tiny", "train", "fp32"): [
                {"xla": "off", "error": "timed out", "batch": 8, "gflop_per_clip": 2.1}
            ]
        },
        [],
    )
    assert throughput.round_intervals([cell_round(12.0, 10.0), missed]) == []
    assert "| - |" in throughput.markdown_table([missed])


def test_rounds_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        throughput.parse_args(["--rounds", "0"])
    assert "--rounds must be >= 1" in capsys.readouterr().err


@pytest.mark.slow
def test_rounds_alternate_ours_and_the_peer_config_by_config(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "throughput.py"), "--configs", "tiny", "--modes",
         "infer", "--precisions", "fp32", "--xla", "off", "--steps", "1", "--warmup", "0",
         "--repeats", "1", "--peak-sizes", "128", "--peer", "--rounds", "2",
         "--markdown", str(tmp_path / "table.md")],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    order = [(line["kind"], line.get("round")) for line in lines[1:]]
    assert order == [
        ("measurement", 0), ("peer", 0), ("ratio", 0),
        ("measurement", 1), ("peer", 1), ("ratio", 1),
        ("ratio_interval", None),
    ]  # fmt: skip
    peer = next(line for line in lines if line["kind"] == "peer")
    assert peer["torch"] and peer["transformers"] and len(peer["infer_clips_per_s_runs"]) == 1
    ratios = [line["ratio"] for line in lines if line["kind"] == "ratio"]
    interval = lines[-1]
    assert interval["ratios"] == ratios and interval["low"] <= interval["ratio"] <= interval["high"]
    assert "Medians of 2 rounds" in (tmp_path / "table.md").read_text()
