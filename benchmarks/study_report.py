"""The co-training study's summaries, markdown tables and plot (from cotrain.py's run rows)."""

import study_stats

HEADS = ("appearance", "motion", "images")
CHANCE = {"appearance": 1 / 12, "motion": 1 / 8, "images": 1 / 24}
SETTINGS = (  # (run, budget, label) of the main table, in its order
    ("appearance", "both", "appearance alone"),
    ("motion", "both", "motion alone"),
    ("images", "equal total", "images alone"),
    ("videos", "both", "appearance + motion"),
    ("cover_video", "equal video", "CoVeR (appearance + motion + images)"),
    ("cover_total", "equal total", "CoVeR (appearance + motion + images)"),
)
# (label, budget, treatment run, control run, heads): paired by seed.
COMPARISONS = (
    ("CoVeR - alone", "equal video steps", "cover_video", None, ("appearance", "motion")),
    ("CoVeR - alone", "equal total steps", "cover_total", None, HEADS),
    ("videos - alone", "equal video = total", "videos", None, ("appearance", "motion")),
    ("divided - space-only", "equal", "motion", "motion_space_only", ("motion",)),
    ("divided - single frame", "equal", "motion", "motion_single_frame", ("motion",)),
    ("tubelets - frame-wise", "equal", "motion", "motion_frame_wise", ("motion",)),
)
CONTROLS = (  # (table label, plot label, run, metric)
    ("divided space-time attention (motion alone)", "divided", "motion", "motion/top1"),
    ("space-only attention, frame-wise patches", "space-only", "motion_space_only", "motion/top1"),
    ("frame-wise patches (TimeSformer's)", "frame-wise", "motion_frame_wise", "motion/top1"),
    ("single frame", "1 frame", "motion_single_frame", "motion/top1"),
    ("motion alone, frames shuffled at test", "shuffled", "motion", "motion/top1_shuffled_time"),
    (
        "CoVeR (equal video), frames shuffled at test",
        "CoVeR shuffled",
        "cover_video",
        "motion/top1_shuffled_time",
    ),
)


def _by_seed(rows, run, key):
    return {row["seed"]: row[key] for row in rows if row["run"] == run and key in row}


def summarize(rows):
    """Means with 95% intervals per run and metric, paired differences, sampling errors."""
    runs = sorted({row["run"] for row in rows})
    keys = sorted({k for row in rows for k in row if k.endswith(("/top1", "/top1_shuffled_time"))})
    intervals = {
        run: {
            key: study_stats.mean_interval(list(values.values()))
            for key in keys
            if (values := _by_seed(rows, run, key))
        }
        for run in runs
    }
    differences = []
    for label, budget, treatment, control, heads in COMPARISONS:
        for head in heads:
            control_run = control or head
            first = _by_seed(rows, treatment, f"{head}/top1")
            second = _by_seed(rows, control_run, f"{head}/top1")
            if first and second:
                differences.append(
                    {
                        "label": label,
                        "budget": budget,
                        "head": head,
                        "treatment": treatment,
                        "control": control_run,
                        **study_stats.paired_difference(first, second),
                    }
                )
    for target in ("appearance", "motion"):
        baseline = _by_seed(rows, f"transfer_{target}_to_{target}", f"{target}/top1")
        for source in ("appearance", "motion", "cover_video"):
            run = f"transfer_{source}_to_{target}"
            values = _by_seed(rows, run, f"{target}/top1")
            if source != target and values and baseline:
                differences.append(
                    {
                        "label": f"{source}->{target} - {target}->{target}",
                        "budget": "equal fine-tuning steps",
                        "head": target,
                        "treatment": run,
                        "control": f"transfer_{target}_to_{target}",
                        **study_stats.paired_difference(values, baseline),
                    }
                )
    sampling = {}
    for head in HEADS:
        errors = [
            study_stats.binomial_standard_error(row[f"{head}/top1"], row[f"{head}/num_examples"])
            for row in rows
            if f"{head}/num_examples" in row
        ]
        if errors:
            sampling[head] = max(errors)
    return {"intervals": intervals, "differences": differences, "max_standard_error": sampling}


def _cell(summary, run, key):
    return study_stats.format_interval(summary["intervals"].get(run, {}).get(key))


def _steps(rows, run):
    row = next((row for row in rows if row["run"] == run), None)
    return ("-", "-") if row is None else (row["total_steps"], row["expected_video_steps"])


def markdown(study):
    """The study's tables (percent points; mean [95% interval] over the seeds)."""
    rows, summary = study["runs"], study["summary"]
    seeds = ", ".join(str(seed) for seed in study["seeds"])
    out = [
        f"Seeds {seeds}; test-split top-1 in %, 1 clip x 1 crop, mean [95% t interval over "
        f"seeds]. Chance: appearance {100 * CHANCE['appearance']:.1f}, motion "
        f"{100 * CHANCE['motion']:.1f}, images {100 * CHANCE['images']:.1f}.",
        "",
        "| setting | budget | total steps | video steps | appearance | motion | images |",
        "|---|---|---|---|---|---|---|",
    ]
    for run, budget, label in SETTINGS:
        total, video = _steps(rows, run)
        cells = [_cell(summary, run, f"{head}/top1") for head in HEADS]
        out.append(f"| {label} | {budget} | {total} | {video} | " + " | ".join(cells) + " |")
    out += [
        "",
        "Paired differences (same seed), points, mean [95% interval]:",
        "",
        "| comparison | budget | head | difference | interval excludes 0 |",
        "|---|---|---|---|---|",
    ]
    for item in summary["differences"]:
        verdict = {True: "yes", False: "no", None: "n/a (1 seed)"}[item["excludes_zero"]]
        out.append(
            f"| {item['label']} | {item['budget']} | {item['head']} | "
            f"{study_stats.format_interval(item)} | {verdict} |"
        )
    out += ["", "Controls on the motion test split (chance 12.5):", ""]
    out += ["| model | motion top-1 |", "|---|---|"]
    out += [
        f"| {label} | {_cell(summary, run, key)} |"
        for label, _, run, key in CONTROLS
        if run in summary["intervals"]  # the frame-wise ablation runs with --frame-wise only
    ]
    out += ["", "Transfer (fine-tuned with a new head at equal fine-tuning steps):", ""]
    out += ["| target | from appearance | from motion | from CoVeR |", "|---|---|---|---|"]
    for target in ("appearance", "motion"):
        cells = [
            _cell(summary, f"transfer_{source}_to_{target}", f"{target}/top1")
            for source in ("appearance", "motion", "cover_video")
        ]
        out.append(f"| {target} | " + " | ".join(cells) + " |")
    out += ["", "One model for every set (CoVeR, no fine-tuning) beside one model per set:", ""]
    out += ["| head | CoVeR, equal video steps | CoVeR, equal total steps | own model |"]
    out += ["|---|---|---|---|"]
    for head in HEADS:
        cells = [_cell(summary, run, f"{head}/top1") for run in ("cover_video", "cover_total")]
        out.append(
            f"| {head} | " + " | ".join(cells) + f" | {_cell(summary, head, f'{head}/top1')} |"
        )
    errors = ", ".join(f"{h} {100 * e:.2f}" for h, e in summary["max_standard_error"].items())
    out += [
        "",
        f"Largest single-run sampling standard error (binomial, points): {errors}. "
        f"Study: {study['wall_s']:.0f} s wall, {study['cpu_s']:.0f} s CPU.",
        "",
    ]
    return "\n".join(out)


def plot(study, path):
    """Bars with 95% intervals: settings per head, motion controls, transfer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = study["summary"]["intervals"]

    def bars(axis, groups, title):
        """groups: [(group label, [(bar label, run, key)])]."""
        labels = list(dict.fromkeys(bar for _, items in groups for bar, _, _ in items))
        width = 0.8 / max(len(labels), 1)
        for j, label in enumerate(labels):
            xs, means, errors = [], [], []
            for i, (_, items) in enumerate(groups):
                for bar, run, key in items:
                    interval = summary.get(run, {}).get(key)
                    if bar == label and interval is not None:
                        xs.append(i + (j - (len(labels) - 1) / 2) * width)
                        means.append(100 * interval["mean"])
                        errors.append(100 * (interval["half_width"] or 0.0))
            axis.bar(xs, means, width, yerr=errors, capsize=3, label=label)
        axis.set_xticks(range(len(groups)), [group for group, _ in groups])
        axis.set_ylabel("test top-1 (%)")
        axis.set_ylim(0, 100)
        axis.set_title(title, fontsize=9)
        axis.legend(fontsize=6)

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    runs = (
        ("alone", "{head}"),
        ("videos", "videos"),
        ("CoVeR eq. video", "cover_video"),
        ("CoVeR eq. total", "cover_total"),
    )
    bars(
        axes[0],
        [
            (head, [(label, run.format(head=head), f"{head}/top1") for label, run in runs])
            for head in HEADS
        ],
        "settings (95% intervals over seeds)",
    )
    bars(
        axes[1],
        [(short, [("motion", run, key)]) for _, short, run, key in CONTROLS if run in summary],
        "motion controls",
    )
    axes[1].axhline(100 * CHANCE["motion"], color="grey", linestyle="--", linewidth=1)
    bars(
        axes[2],
        [
            (
                target,
                [
                    (f"from {source}", f"transfer_{source}_to_{target}", f"{target}/top1")
                    for source in ("appearance", "motion", "cover_video")
                ],
            )
            for target in ("appearance", "motion")
        ],
        "transfer (equal fine-tuning steps)",
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
