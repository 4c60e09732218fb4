"""The numbers PNGAN's paper reports (Cai et al., NeurIPS 2021, Tables 1 and 2; the authors'
README), for the tables that put the kit's own measurements beside them."""

from __future__ import annotations

PAPER = "Cai et al., NeurIPS 2021"

# Table 1: noise generation on SIDD (lower is better)
NOISE_GENERATION = {
    "CBDNet": {"pgap": 8.30, "akld": 0.728},
    "ULRD (unprocessing)": {"pgap": 4.90, "akld": 0.545},
    "GRDN": {"pgap": 2.28, "akld": 0.443},
    "DANet": {"pgap": 2.06, "akld": 0.212},
    "PNGAN": {"pgap": 0.84, "akld": 0.153},
}

# Table 2: denoising PSNR / SSIM; "*" = fine-tuned with PNGAN pairs
DENOISING_DATASETS = ("SIDD", "DND", "PolyU", "Nam")
DENOISING = {
    "RIDNet": {"SIDD": (38.71, 0.914), "DND": (39.26, 0.953), "PolyU": (38.86, 0.962), "Nam": (39.20, 0.973)},
    "MPRNet": {"SIDD": (39.71, 0.958), "DND": (39.80, 0.954), "PolyU": (39.07, 0.969), "Nam": (39.41, 0.974)},
    "MIRNet": {"SIDD": (39.72, 0.959), "DND": (39.88, 0.956), "PolyU": (39.18, 0.973), "Nam": (39.57, 0.979)},
    "RIDNet*": {"SIDD": (39.25, 0.956), "DND": (39.55, 0.955), "PolyU": (39.54, 0.971), "Nam": (39.69, 0.975)},
    "MPRNet*": {"SIDD": (40.06, 0.960), "DND": (40.18, 0.961), "PolyU": (40.48, 0.982), "Nam": (40.72, 0.984)},
    "MIRNet*": {"SIDD": (40.07, 0.960), "DND": (40.25, 0.962), "PolyU": (40.55, 0.983), "Nam": (40.78, 0.986)},
}
