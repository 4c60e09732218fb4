"""Figures of the kit's results, drawn from its metrics: AKLD per noise model, the PGap
denoisers' PSNR, the fine-tuning gain against the share of PNGAN pairs."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from pngan.noise import label
from pngan.plots.common import style


def akld_by_model(table: pd.DataFrame) -> Figure:
    """AKLD per noise model (`table`: one row per model, columns `model` and `akld`), log scale."""
    with style():
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.2))
        ax.barh(table["model"][::-1], table["akld"][::-1], color="0.35")
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
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(models) + 1.4))
        labels = [label(k) for k in models][::-1]
        ax.barh(labels, [v["psnr"] for v in models.values()][::-1], color="0.45")
        ax.axvline(report["models"][real]["psnr"], color="black", linestyle="--", label="trained on real pairs")
        low = min(v["psnr"] for v in report["models"].values())
        ax.set_xlim(low - 1.0, None)
        ax.set(xlabel="PSNR on the real test pairs (dB)", title="Denoiser trained on each model's fake pairs")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
    return fig


def finetune_ablation(table: pd.DataFrame) -> Figure:
    """Fine-tuning gain against the fake ratio, one line per denoiser and test set (`table`: columns
    fake_ratio, denoiser, test_set, gain_psnr)."""
    with style():
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for (name, test_set), group in table.groupby(["denoiser", "test_set"]):
            ax.plot(group["fake_ratio"], group["gain_psnr"], marker="o", label=f"{name} on {test_set}")
        ax.axhline(0, color="0.6", linewidth=0.8, linestyle=":")
        ax.set(xlabel="share of PNGAN pairs in fine-tuning (fake ratio)", ylabel="PSNR gain over the start (dB)",
               title="Does PNGAN data help beyond more real fine-tuning?")
        ax.legend(fontsize=8)
        fig.tight_layout()
    return fig
