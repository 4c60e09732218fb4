"""Figures of the kit's results, drawn from its metrics: AKLD per noise model, the PGap
denoisers' PSNR, the fine-tuning gain against the share of generated pairs, per generator."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from pngan.noise import label
from pngan.plots.common import style, wrapped


def akld_by_model(table: pd.DataFrame) -> Figure:
    """AKLD per noise model (`table`: one row per model, columns `model` and `akld`), log scale."""
    with style():
        fig, ax = plt.subplots(figsize=(7, 0.5 * len(table) + 1.2))
        ax.barh(wrapped(table["model"][::-1]), table["akld"][::-1], color="0.35")
        ax.set_xscale("log")
        ax.set_xlabel("AKLD on the test split (log scale, lower is better)")
        ax.set_title("Noise models against real noise")
        fig.tight_layout()
    return fig


def pgap_psnr(report: dict[str, Any], real: str = "real") -> Figure:
    """PSNR on the real test pairs of the denoiser trained on each model's pairs (a pgap report:
    `models` -> {psnr}); dashed: the one trained on the real pairs (`real`)."""
    models = {k: v for k, v in report["models"].items() if k != real}
    with style():
        fig, ax = plt.subplots(figsize=(7, 0.5 * len(models) + 1.4))
        labels = wrapped(label(k) for k in reversed(list(models)))
        ax.barh(labels, [v["psnr"] for v in models.values()][::-1], color="0.45")
        ax.axvline(report["models"][real]["psnr"], color="black", linestyle="--", label="trained on real pairs")
        low = min(v["psnr"] for v in report["models"].values())
        ax.set_xlim(low - 1.0, None)
        ax.set(xlabel="PSNR on the real test pairs (dB)", title="Denoiser trained on each model's fake pairs")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
    return fig


def finetune_ablation(table: pd.DataFrame, control: str = "real") -> Figure:
    """Fine-tuning gain against the fake ratio, one line per generator, denoiser and test set, each
    starting from the shared ratio-0 point, real-only fine-tuning (`control`), marked apart
    (`table`: columns fake_ratio, generator, denoiser, test_set, gain_psnr)."""
    shared = table[table["generator"] == control]
    with style():
        fig, ax = plt.subplots(figsize=(6, 4.4))
        for (generator, name, test_set), group in table[table["generator"] != control].groupby(["generator", "denoiser", "test_set"]):
            start = shared[(shared["denoiser"] == name) & (shared["test_set"] == test_set)]
            line = pd.concat([start, group]).sort_values("fake_ratio")
            ax.plot(line["fake_ratio"], line["gain_psnr"], marker="o", label=f"{name} on {test_set}, {label(generator)}")
        ax.scatter(shared["fake_ratio"], shared["gain_psnr"], marker="s", color="black", zorder=3, label="real pairs only (control)")
        ax.axhline(0, color="0.6", linewidth=0.8, linestyle=":")
        ax.set(xlabel="share of generated pairs in fine-tuning (fake ratio)", ylabel="PSNR gain over the start (dB)",
               title="Do generated pairs help beyond more real fine-tuning?")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.2))  # below: the names are long
        fig.tight_layout()
    return fig
