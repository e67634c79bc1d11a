"""Reports of a benchmark: markdown tables, ``bench.json``/``bench.md`` and the PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

from eggroll_snn.bench.config import SWEEP_METHODS, BenchConfig, method_rank
from eggroll_snn.bench.sweep import population_series
from eggroll_snn.errors import ConfigError


def _mib(value) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _count(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _rate(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown_table(result: dict) -> str:
    """One configuration's results as a markdown table, with a line naming the configuration."""
    config = result["config"]
    sizes = "-".join(map(str, BenchConfig(**config).layer_sizes))
    lines = [
        f"N={config['population_size']}, B={config['batch_size']}, T={config['time_bins']}, network {sizes}, "
        f"{result['environment']['backend']} ({result['environment']['cpu_count']} CPUs), "
        f"load average {result['load_average_before']} -> {result['load_average_after']}",
        "",
        "| method | s / generation (median) | x eggroll_r1 | compile s | member-evals / s | member-sample-bins / s "
        "| GFLOP/s | % of matmul | XLA buffers MiB | peak RSS MiB | RSS growth MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method, entry in result["methods"].items():
        if not entry["available"]:
            lines.append(f"| {method} | {entry['reason']} | | | | | | | | | |")
            continue
        fraction = entry.get("fraction_of_matmul")
        lines.append(
            f"| {method} | {entry['seconds_per_generation']:.4f} | {entry['ratio_to_eggroll_r1']:.2f} | "
            f"{entry['compile_seconds']:.1f} | {_count(entry.get('member_evaluations_per_second'))} | "
            f"{_count(entry.get('member_sample_bins_per_second'))} | {_rate(entry.get('gflops_per_second'))} | "
            f"{'-' if fraction is None else f'{100 * fraction:.1f}'} | "
            f"{_mib(entry.get('xla_buffer_bytes'))} | {_mib(entry.get('peak_rss_bytes'))} | {_mib(entry.get('rss_growth_bytes'))} |"
        )
    speedup, fraction = result["speedup_full_rank_over_eggroll_r1"], result["throughput_fraction_of_inference"]
    lines.append("")
    if result["methods"].get("bptt", {}).get("available"):
        lines.append("bptt is one surrogate-gradient step on the B samples: its member-evals / s counts B per step, not N*B.")
    if speedup is not None:
        lines.append(f"full_rank / eggroll_r1 = {speedup:.1f}x (speed-up of EGGROLL r=1 per generation)")
    if fraction is not None:
        lines.append(f"eggroll_r1 throughput = {100 * fraction:.0f} % of batched inference on N*B distinct samples (input traffic, not a ceiling)")
    for name, speedup in result.get("speedup_fast_over_reference", {}).items():
        lines.append(f"{name}: fast population forward {speedup:.2f}x the reference's speed (reference_r{name[len('eggroll_r'):]})")
    if result["methods"].get("matmul", {}).get("available"):
        lines.append(
            "GFLOP/s counts a generation's population forward as the reference computes it (BenchConfig.forward_flops), "
            "for the fast and the reference forward alike; matmul is a square float32 product, XLA's own rate."
        )
    return "\n".join(lines)


def memory_table(summary: dict) -> str:
    """The memory-vs-N slopes as a markdown table."""
    lines = [
        "| method | XLA buffers, bytes / member | peak RSS, bytes / member | expected bytes / member | populations |",
        "|---|---:|---:|---:|---|",
    ]
    for method, entry in summary.items():
        cells = [entry.get("xla_buffer_bytes_per_member"), entry.get("peak_rss_bytes_per_member"), entry["expected_bytes_per_member"]]
        text = ["-" if value is None else f"{value:,.0f}" for value in cells]
        lines.append(f"| {method} | {' | '.join(text)} | {entry['populations']} |")
    return "\n".join(lines)


def markdown_report(report: dict) -> str:
    """The whole report (headline, sweep points, memory slopes) as markdown."""
    parts = ["## Headline", "", markdown_table(report["headline"])]
    for result in report.get("sweep", []):
        parts += ["", f"## Sweep ({result['axis']})", "", markdown_table(result)]
    if report.get("memory"):
        parts += ["", "## Memory per added member (slope over N)", "", memory_table(report["memory"])]
    return "\n".join(parts) + "\n"


def write_plots(report: dict, out_dir: Path) -> list[Path]:
    """PNG plots: time/generation vs rank (headline); vs N and memory vs N (when swept)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    headline = report["headline"]["methods"]
    ranks = sorted(method_rank(name) for name, entry in headline.items() if name.startswith("eggroll_r") and entry["available"])
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(ranks, [headline[f"eggroll_r{r}"]["seconds_per_generation"] for r in ranks], "o-", label="EGGROLL")
    for method, style in (("full_rank", "--"), ("evosax_open_es", ":"), ("inference", "-.")):
        if headline.get(method, {}).get("seconds_per_generation") is not None:
            axes.axhline(headline[method]["seconds_per_generation"], linestyle=style, color="grey", label=method)
    axes.set(xscale="log", yscale="log", xlabel="rank r", ylabel="seconds / generation", title="Time per generation vs rank")
    axes.set_xticks(ranks, [str(r) for r in ranks])
    axes.legend()
    paths.append(_save(figure, out_dir / "time_vs_rank.png"))

    series = population_series(report["headline"], report.get("sweep", []))
    if len(series) > 1:
        for key, ylabel, name in (
            ("seconds_per_generation", "seconds / generation", "time_vs_population.png"),
            ("xla_buffer_bytes", "XLA buffers (bytes)", "memory_vs_population.png"),
            ("peak_rss_bytes", "peak RSS (bytes)", "rss_vs_population.png"),
        ):
            lines = {}
            for method in SWEEP_METHODS:
                points = [
                    (result["config"]["population_size"], result["methods"].get(method, {}).get(key))
                    for result in series
                ]
                lines[method] = [(n, value) for n, value in points if value is not None]
            if not any(lines.values()):
                continue  # e.g. no RSS measured
            figure, axes = plt.subplots(figsize=(6, 4))
            for method, points in lines.items():
                if points:
                    axes.plot(*zip(*points), "o-", label=method)
            axes.set(xscale="log", yscale="log", xlabel="population size N", ylabel=ylabel, title=f"{ylabel} vs N")
            axes.legend()
            paths.append(_save(figure, out_dir / name))
    return paths


def _save(figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_report(report: dict, out_dir: str | Path) -> list[Path]:
    """Write ``bench.json``, ``bench.md`` and the PNG plots into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"bench output folder --out {out_dir} cannot be created ({error}); choose a writable folder") from error
    json_path, markdown_path = out_dir / "bench.json", out_dir / "bench.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    markdown_path.write_text(markdown_report(report))
    return [json_path, markdown_path, *write_plots(report, out_dir)]
