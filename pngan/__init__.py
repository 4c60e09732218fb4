"""PNGAN: realistic camera noise by pixel-level noise-aware adversarial training (NeurIPS 2021).

An open implementation and reproducible research kit. Subpackages:
`pngan.data` (readers, simulated camera, patches), `pngan.noise` (classical noise models),
`pngan.models` (generator, discriminator, denoisers), `pngan.train` (training loops),
`pngan.metrics` (AKLD, KLD, PSNR, SSIM), `pngan.stages` (one function per pipeline stage).
"""

__version__ = "0.1.0"
