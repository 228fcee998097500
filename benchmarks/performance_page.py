"""docs/performance.md: the CPU benchmarks' current tables, one per machine kind (report.py)."""

import gpu_throughput  # the GPU table, as its `--table-from` prints it
import report_format as fmt
import throughput  # the peer's best per variant and the ratio interval, as the benchmark computes

BUSY = 0.05  # foreign_cpu_frac above which another process shared the cores noticeably


# ----------------------------------------------------------------------------- CPU throughput
def key_order(config, mode, precision, xla="off"):
    """Rows in the benchmark's order: config (tiny, small, base), mode, fp32 before bf16."""
    configs = list(throughput.CONFIGS)
    position = configs.index(config) if config in configs else len(configs)
    return (position, config, ("infer", "train").index(mode), precision != "fp32", xla != "off")


def peer_versions(peers):
    line = next((p for p in peers if p.get("torch")), None)
    if not line:
        return "versions not recorded"
    return f"transformers {line.get('transformers')}, torch {line['torch']}"


def throughput_row(key, xla, records, peers, label):
    """A table row: `records` are one run's measurements of `key` at `xla` (one per round)."""
    config, mode, precision = key
    ok = [r for r in records if "error" not in r]
    rounds = sorted({r.get("round") or 0 for r in records})
    ours, eager, compiled, ratios = [], [], [], []
    for index in rounds:
        record = next((r for r in ok if (r.get("round") or 0) == index), None)
        round_peers = [p for p in peers if (p.get("round") or 0) == index]
        summary = throughput.summarize({key: [record]} if record else {key: []}, round_peers)
        peer = summary[0]["peer"] if summary else {"eager": None, "compiled": None}
        eager.append(peer["eager"])
        compiled.append(peer["compiled"])
        best = max((v for v in peer.values() if v), default=None)
        if record:
            ours.append(record["clips_per_s"])
            if best:
                ratios.append(record["clips_per_s"] / best)
    if len(ratios) > 1:
        interval = throughput.ratio_interval(ratios)
        ratio = f"{interval['ratio']:.2f} [{interval['low']:.2f}, {interval['high']:.2f}]"
    else:
        ratio = fmt.number(ratios[0] if ratios else None, ".2f")
    notes = ""
    if any((r.get("foreign_cpu_frac") or 0) > BUSY for r in ok):
        notes += " †"
    if any(r.get("compute_precision") == "float32" for r in ok) and precision == "bf16":
        notes += " ‡"
    clips = (fmt.figure(fmt.median(ours)) + notes) if ok else "failed"
    gflop = records[0].get("gflop_per_clip")
    return [
        config, mode, precision, xla, records[0].get("batch"), fmt.figure(gflop), clips,
        fmt.number(fmt.median(r.get("mfu") for r in ok), ".2f")
        + (" (peak too low)" if any(r.get("mfu_above_peak") for r in ok) else ""),
        fmt.figure(max((r["peak_rss_mb"] for r in ok if "peak_rss_mb" in r), default=None)),
        fmt.figure(fmt.median(eager)), fmt.figure(fmt.median(compiled)), ratio, label,
    ]  # fmt: skip


def current_runs(files, benchmark, kind):
    """(date, path, runs) of the newest file holding `benchmark` runs with `kind` lines, or None."""
    for date, path in files:
        runs = [(line, body) for line, body in fmt.split_runs(fmt.read_lines(path))
                if line.get("benchmark", "throughput") == benchmark
                and any(r.get("kind") == kind for r in body)]  # fmt: skip
        if runs:
            return date, path, runs
    return None


def label_runs(rows, used, runs):
    """Letters for the runs the rows drew on, A first in the file's order: each row's last cell,
    a run's index, becomes its letter. Returns {letter: (machine line, extra facts)}."""
    letters = {index: chr(ord("A") + n) for n, index in enumerate(sorted(used))}
    for row in rows:
        row[-1] = letters[row[-1]]
    return {letters[index]: (runs[index][0], used[index]) for index in sorted(used)}


def throughput_section(machine, files):
    """The current throughput table of one machine kind, or [] where it has none."""
    current = current_runs(files, "throughput", "measurement")
    if not current:
        return []
    date, path, runs = current
    keys = sorted(
        {(r["config"], r["mode"], r["precision"]) for _, body in runs for r in body
         if r.get("kind") == "measurement"}, key=lambda k: key_order(*k),
    )  # fmt: skip
    rows, used = [], {}
    for key in keys:

        def measured(body, key=key):
            return [r for r in body if r.get("kind") == "measurement"
                    and (r["config"], r["mode"], r["precision"]) == key]  # fmt: skip

        index = next(
            (i for i in reversed(range(len(runs)))
             if any("error" not in r for r in measured(runs[i][1]))), len(runs) - 1,
        )  # fmt: skip
        body = runs[index][1]
        extra = used.setdefault(index, {})
        peers = [p for p in body if p.get("kind") == "peer" and p.get("config") == key[0]
                 and p.get("precision") == key[2] and "error" not in p]  # fmt: skip
        if peers:
            extra["peer_versions"] = peer_versions(peers)
        for xla in ("off", "on"):
            records = [r for r in measured(body) if r.get("xla", "off") == xla]
            if records:
                rows.append(throughput_row(key, xla, records, peers, index))
    named = label_runs(rows, used, runs)
    first = runs[max(used)][0]
    header = ["config", "mode", "precision", "XLA", "batch", "GFLOP/clip", "ours clips/s",
              "MFU", "peak RSS MiB", "peer eager", "peer compiled", "ours / peer best", "run"]  # fmt: skip
    out = [f"### {fmt.machine_title(machine, first)}", "", fmt.machine_facts(first, path), ""]
    out += fmt.runs_table(named, date)
    out += ["", *fmt.table(header, rows), ""]
    marks = " ".join(row[6] for row in rows)
    if "†" in marks:
        out.append(f"† another process used over {BUSY:.0%} of the cores during the timed steps.")
    if "‡" in marks:
        out.append("‡ computed in float32: this CPU has no native bfloat16 (`compute_precision`).")
    if any("[" in row[11] for row in rows):
        out.append(
            "Ratios with an interval: geometric mean of the run's paired rounds (ours and the "
            "peer's, minutes apart) [95% t interval]; clips/s and MFU there are medians."
        )
    return out + [""]


# ----------------------------------------------------------------------------- serving
def serving_section(machine, files):
    """The current serving table of one machine kind, or [] where it has none."""
    current = current_runs(files, "serving_throughput", "serving")
    if not current:
        return []
    date, path, runs = current
    keys = sorted(
        {(r["config"], r["precision"]) for _, body in runs for r in body if r.get("kind") == "serving"},
        key=lambda k: key_order(k[0], "infer", k[1]),
    )  # fmt: skip
    rows, used = [], {}
    for config, precision in keys:
        index, row = next(
            (i, r) for i in reversed(range(len(runs))) for r in reversed(runs[i][1])
            if r.get("kind") == "serving" and (r["config"], r["precision"]) == (config, precision)
        )  # fmt: skip
        used.setdefault(index, {})
        label = index  # a letter once every row is in (label_runs)
        if "error" in row:
            rows.append([config, precision, row.get("batch"), "failed", *["-"] * 4, label])
            continue
        rows.append([
            config, precision, row.get("batch"), fmt.figure(row.get("serving_clips_per_s")),
            fmt.figure(row.get("model_clips_per_s")), fmt.number(row.get("preprocess_share"), ".1%"),
            fmt.figure(row.get("peer_infer_clips_per_s")),
            fmt.number(row.get("ratio_vs_peer"), ".2f"), label,
        ])  # fmt: skip
    named = label_runs(rows, used, runs)
    first = runs[max(used)][0]
    header = ["config", "precision", "batch", "signature clips/s", "model alone clips/s",
              "preprocessing share", "peer model-only clips/s", "signature / peer", "run"]  # fmt: skip
    out = [f"### {fmt.machine_title(machine, first)}", "", fmt.machine_facts(first, path), ""]
    out += fmt.runs_table(named, date)
    out += ["", *fmt.table(header, rows), ""]
    if any(row[5].startswith("-") and row[5] != "-" for row in rows):
        out.append(
            "A negative preprocessing share: the model alone ran slower than the signature that "
            "contains it, i.e. the machine's speed moved by more than preprocessing costs."
        )
    return out + [""]


# ----------------------------------------------------------------------------- single frame, input
def single_frame_section(machine, files, mixed):
    """The newest `single_frame.py` run of one machine kind: per mode, or per variant (mixed)."""
    date, path = files[0]
    lines = fmt.read_lines(path)
    info = next((ln for ln in lines if ln.get("kind") == "machine" or "flags" in ln), {})
    if "flags" in info:  # an early machine line: "machine" held the CPU model, "flags" the ISA
        info = dict(info, cpu_model=info["machine"], isa=info["flags"])
    summary = next((ln for ln in reversed(lines) if ln.get("summary")), None)
    rounds = [ln for ln in lines if "round" in ln]
    if summary is None:
        return []
    out = [f"### {fmt.machine_title(machine, info)}", "", fmt.machine_facts(info, path), ""]
    out += fmt.runs_table({"A": (info, {})}, date) + [""]
    if mixed:
        first = {ln["variant"]: ln["first_step_s"] for ln in lines if "variant" in ln}
        header = ["variant", "wall ms per step (median)", "CPU ms per step (median)",
                  "first step s (tracing)"]  # fmt: skip
        rows = [[name, fmt.figure(fmt.median(r[f"step_ms/{name}"] for r in rounds)),
                 fmt.figure(fmt.median(r[f"step_cpu_ms/{name}"] for r in rounds)),
                 fmt.figure(first.get(name))] for name in ("trainer", "stock")]  # fmt: skip
        out += fmt.table(header, rows)
        out += ["", f"{len(rounds)} rounds of {rounds[0]['steps']} steps; trainer / stock: wall "
                f"{summary['wall_ratio_median']:.3f} (median; faster in "
                f"{summary['wall_rounds_faster']} rounds), CPU {summary['cpu_ratio_median']:.3f} "
                f"(faster in {summary['cpu_rounds_faster']})."]  # fmt: skip
    else:
        header = ["mode", "product ms (median)", "attention ms (median)",
                  "product / attention, median [range]"]  # fmt: skip
        rows = []
        for mode in ("train", "infer"):
            low, high = summary[f"{mode}_ratio_range"]
            rows.append([mode, fmt.figure(fmt.median(r[f"{mode}_ms/product"] for r in rounds)),
                         fmt.figure(fmt.median(r[f"{mode}_ms/attention"] for r in rounds)),
                         f"{summary[f'{mode}_ratio_median']:.3f} [{low:.3f}, {high:.3f}]"])  # fmt: skip
        out += fmt.table(header, rows)
        agree = "the same" if summary.get("outputs_agree") else "different"
        out += ["", f"{len(rounds)} rounds, batch {rounds[0]['batch']}; the two variants gave "
                f"{agree} logits."]  # fmt: skip
    return out + [""]


def input_pipeline_section(machine, files):
    """The newest `input_pipeline.py` run of one machine kind."""
    date, path = files[0]
    runs = fmt.split_runs(fmt.read_lines(path))
    line, body = runs[-1]
    rows = [[r["setting"], r["variant"], r["num_parallel_calls"], fmt.figure(r["clips_per_s"]),
             fmt.figure(r["clips_per_s_per_core"]), fmt.figure(r["images_per_s"])]
            for r in body if r.get("kind") == "input_pipeline"]  # fmt: skip
    out = [f"### {fmt.machine_title(machine, line)}", "", fmt.machine_facts(line, path), ""]
    out += fmt.runs_table({"A": (line, {})}, date) + [""]
    header = ["setting", "variant", "parallel calls", "clips/s", "clips/s per core", "images/s"]
    return out + fmt.table(header, rows) + [""]


def gpu_section(device, files):
    """The newest GPU file of one device: gpu_throughput.py's table and the remat figures."""
    date, path = files[0]
    records = fmt.read_lines(path)
    machines = [r for r in records if r.get("kind") == "machine"]
    best = {p: max(m.get(f"peak_{p}_tflops") or 0 for m in machines) for p in ("bf16", "fp32")}
    torch = next((r["torch"] for r in records if r.get("torch")), None)
    commits = sorted({fmt.commit(m) for m in machines})
    commands = "".join(f" Command: `{m['command']}`." for m in machines if m.get("command"))
    out = [
        f"### {machines[0].get('device_kind', device)} (`{device}`), "
        f"{machines[0].get('date') or date + ' (file)'}",
        "",
        f"cover_tf's model on Keras' JAX backend against HF TimeSformer on PyTorch "
        f"{torch or '(version not recorded)'}, `benchmarks/gpu_throughput.py`. Matmul peaks "
        f"(best 8192^3 of the file's {len(machines)} runs; MFU is read against them): bf16 "
        f"{best['bf16']:.1f}, fp32 {best['fp32']:.1f} TFLOP/s. Commit: {', '.join(commits)}; "
        f"host CPU not recorded. Data: {fmt.link(path)}.{commands}",
        "",
        gpu_throughput.markdown_table(records).rstrip(),
        "",
        "Clips/s; GiB: peak device memory of our step; ratio: ours / the peer's best. "
        "224 px clips.",
        "",
    ]
    remat = [r for r in records if r.get("kind") == "measurement" and r.get("remat")]
    if remat:
        rows = []
        for record in remat:
            key = gpu_throughput.row_key(record)
            plain = next((r for r in reversed(records) if r.get("kind") == "measurement"
                          and r["impl"] == "cover_tf" and not r.get("remat") and "error" not in r
                          and gpu_throughput.row_key(r) == key), None)  # fmt: skip
            rows.append([*map(str, key), fmt.figure(record["clips_per_s"]),
                         fmt.figure(record["peak_device_mib"] / 1024),
                         fmt.figure(plain and plain["clips_per_s"]),
                         fmt.figure(plain and plain["peak_device_mib"] / 1024)])  # fmt: skip
        header = ["config", "frames", "mode", "precision", "batch", "remat clips/s",
                  "remat GiB", "without clips/s", "without GiB"]  # fmt: skip
        out += ["Rematerialised blocks (`--remat`) against the same step without:", ""]
        out += fmt.table(header, rows) + [""]
    return out


def performance_page(found):
    out = [
        fmt.HEADER,
        "# Performance",
        "",
        "Clips per second of cover_tf's TimeSformer against the HF TimeSformer peer "
        "(transformers on PyTorch, `benchmarks/peer_timesformer.py`), one current table per "
        "machine kind. How each figure is measured, and the commands: "
        "[benchmarks/README.md](../benchmarks/README.md).",
        "",
        "- **ours / peer best**: cover_tf's clips/s at that XLA setting over the peer's best "
        "(eager or `torch.compile`) at the same config, precision, mode and batch; above 1 "
        "cover_tf is faster.",
        "- **MFU**: achieved FLOP/s (the analytic count, GFLOP/clip x clips/s) over TensorFlow's "
        "measured matmul peak of the same precision in the same run.",
        "- **run**: the run (one benchmark invocation) the row comes from; the runs table names "
        "its date, commit, threads, oneDNN and peaks (torch's: the peer's BLAS). A date marked "
        '(file) is the result file\'s, for a run that did not record its own; "not recorded" '
        "marks what an early run did not record.",
        "",
        "## Training and inference throughput (CPU)",
        "",
    ]
    cpu = found.get("cpu", {})
    for machine in fmt.newest_first(cpu):
        out += throughput_section(machine, cpu[machine])
    gpus = found.get("gpu", {})
    out += ["## Training and inference throughput (GPU)", ""] if gpus else []
    for device in fmt.newest_first(gpus):
        out += gpu_section(device, gpus[device])
    out += ["## Serving: the exported signature", "",
            "`benchmarks/serving_throughput.py`: the SavedModel's head signature on uint8 frames "
            "(preprocessing included) against the Keras model alone and the peer's best "
            "model-only inference.", ""]  # fmt: skip
    for machine in fmt.newest_first(cpu):
        out += serving_section(machine, cpu[machine])
    for benchmark, title, text in (
        ("single_frame", "Images: the temporal branch as one product",
         "`benchmarks/single_frame.py`: one-frame inputs through the temporal branch's matrix "
         "product against attention over one key, same weights, interleaved rounds."),
        ("single_frame_mixed", "Images in the mixed stream: the trainer's step against Keras'",
         "`benchmarks/single_frame.py --mixed`: whole `fit` steps on the demo's mixed stream "
         "(cached), the trainer's one-frame trace against Keras' stock `train_step`."),
    ):  # fmt: skip
        files = found.get(benchmark, {})
        out += [f"## {title}", "", text, ""]
        for machine in fmt.newest_first(files):
            out += single_frame_section(machine, files[machine], benchmark.endswith("mixed"))
    out += ["## Input pipeline", ""]
    files = found.get("input_pipeline", {})
    if not files:
        out += ["No input-pipeline results are recorded: `benchmarks/input_pipeline.py "
                "--results-dir benchmarks/results` records them.", ""]  # fmt: skip
    for machine in fmt.newest_first(files):
        out += input_pipeline_section(machine, files[machine])
    return fmt.page_text(out)
