"""simulate_loop's report: the markdown tables and the PNG curves of a results file (loop_results_*.json), and
several result files merged into one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from service.queue import STRATEGIES

ORDERS = ("tool", "cleanlab", "entropy", "random")  # the fixing experiment's review orders, its table's columns


def mean_std(values: list[float]) -> str:
    """Mean ± standard deviation over the seeds, 4 decimals."""
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"


def tables(results: dict[str, Any]) -> str:
    """The fixing and labelling tables, as markdown, of (merged) results."""
    lines = ["### Fixing labels (10 % flipped, review 1 % of training per round)", "",
             "| dataset | noise | noisy F1 | clean F1 | tool | cleanlab | entropy | random | recovered: tool "
             "| cleanlab | entropy | random | flips found: tool | cleanlab | entropy | random |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, runs in results["fixing"].items():
        dataset, mode = key.split("/")
        cells = [mean_std([r["none"] for r in runs]), mean_std([r["clean"] for r in runs])]
        cells += [mean_std([r[o]["curve"][-1] for r in runs]) for o in ORDERS]
        # Recovered share of the mean F1s (a mean of per-seed ratios explodes when a seed's loss is tiny).
        lost = np.mean([r["clean"] - r["none"] for r in runs])
        cells += [f"{np.mean([r[o]['curve'][-1] - r['none'] for r in runs]) / lost:.0%}" if lost > 0 else "n/a"
                  for o in ORDERS]
        cells += [f"{np.mean([r[o]['found'] for r in runs]):.0f} / {runs[0]['flipped']}" for o in ORDERS]
        lines.append(f"| {dataset} | {mode} | " + " | ".join(cells) + " |")
    lines += ["", "### Labelling (5 % labelled to start, 1 % of the pool per round)", "",
              "| dataset | strategy | AUC (mean macro-F1 over rounds) | final macro-F1 | final accuracy | labels to "
              "within 1 pt of the whole pool |", "|---|---|---|---|---|---|"]
    for dataset, runs in results["labelling"].items():
        pool = runs[0]["pool"]
        full = np.mean([r["full_pool"]["macro_f1"] for r in runs])
        for strategy in [x for x in STRATEGIES if x in runs[0]]:
            needed = [r[strategy]["labels_to_within_1pt"] for r in runs]
            reached = [n for n in needed if n is not None]
            need_text = (f"{np.mean(reached):.0f} ({np.mean(reached) / pool:.0%} of the pool; {len(reached)}/"
                         f"{len(runs)} seeds)" if reached else "not within the cap")
            lines.append(f"| {dataset} (whole pool {full:.4f}) | {strategy} | "
                         f"{mean_std([r[strategy]['auc'] for r in runs])} | "
                         f"{mean_std([r[strategy]['macro_f1'][-1] for r in runs])} | "
                         f"{mean_std([r[strategy]['accuracy'][-1] for r in runs])} | {need_text} |")
    return "\n".join(lines)


def plots(results: dict[str, Any], out: Path) -> list[Path]:
    """One PNG per fixing (dataset, noise mode) and per labelling dataset: mean test macro-F1 per round."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    def figure(path: Path, title: str, xlabel: str, lines: list[tuple[str, list[float], Any, dict[str, Any]]],
               levels: list[tuple[float, dict[str, Any]]]) -> Path:
        """lines: (label, x, mean y, plot style); levels: horizontal references (y, style)."""
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for label, x, y, style in lines:
            ax.plot(x, y, label=label, **style)
        for y, style in levels:
            ax.axhline(y, **style)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test macro-F1")
        ax.set_title(title)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    written = []
    for key, runs in results["fixing"].items():
        dataset, mode = key.split("/")
        reviewed = [100 * i * runs[0]["per_round"] / runs[0]["train"] for i in range(len(runs[0]["tool"]["curve"]))]
        written.append(figure(
            out / f"loop_fixing_{dataset}_{mode}.png", f"{dataset}: fixing 10 % {mode} noise", "% of training reviewed",
            [(order, reviewed, np.mean([r[order]["curve"] for r in runs], axis=0), {"marker": "o"})
             for order in ORDERS],
            [(np.mean([r["clean"] for r in runs]), {"color": "grey", "linestyle": "--", "label": "clean"}),
             (np.mean([r["none"] for r in runs]), {"color": "black", "linestyle": ":", "label": "no fixes"})]))
    for dataset, runs in results["labelling"].items():
        written.append(figure(
            out / f"loop_labelling_{dataset}.png", f"{dataset}: labelling by queue strategy", "% of the pool labelled",
            [(strategy, [100 * s / runs[0]["pool"] for s in runs[0][strategy]["labels"]],
              np.mean([r[strategy]["macro_f1"] for r in runs], axis=0), {})
             for strategy in [x for x in STRATEGIES if x in runs[0]]],
            [(np.mean([r["full_pool"]["macro_f1"] for r in runs]),
              {"color": "grey", "linestyle": "--", "label": "whole pool"})]))
    return written


def merged(paths: list[Path]) -> dict[str, Any]:
    """Several runs' result files as one (later files win for the same dataset and mode, or strategy)."""
    out: dict[str, Any] = {"fixing": {}, "labelling": {}}
    for path in paths:
        data = json.loads(path.read_text())
        out["fixing"].update(data.get("fixing", {}))
        for dataset, runs in data.get("labelling", {}).items():
            if dataset not in out["labelling"]:
                out["labelling"][dataset] = runs
                continue
            # Same seeds, more (or re-run) strategies: seed by seed, the later file's strategies win.
            for mine, theirs in zip(out["labelling"][dataset], runs, strict=True):
                mine.update(theirs)
    return out
