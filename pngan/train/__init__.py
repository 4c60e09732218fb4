"""Training loops: PNGAN's adversarial training (`train_pngan`), the noise-aware generator's
(`train_pngan_aware`) and supervised denoiser training (`train_denoiser`), sharing resume,
checkpoint, NaN-guard, logging and torchrun machinery."""

from pngan.train.aware import train_pngan_aware
from pngan.train.config import AwareGanConfig, DenoiserConfig, GanConfig
from pngan.train.denoiser import train_denoiser
from pngan.train.gan import train_pngan

__all__ = ["GanConfig", "AwareGanConfig", "DenoiserConfig", "train_pngan", "train_pngan_aware", "train_denoiser"]
