"""Training loops: PNGAN's adversarial training (`train_pngan`) and supervised denoiser training
(`train_denoiser`), sharing resume, checkpoint, NaN-guard, logging and torchrun machinery."""

from pngan.train.config import DenoiserConfig, GanConfig
from pngan.train.denoiser import train_denoiser
from pngan.train.gan import train_pngan

__all__ = ["GanConfig", "DenoiserConfig", "train_pngan", "train_denoiser"]
