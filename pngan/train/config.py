"""Every setting of the two training loops, as dataclasses read from params.yaml sections.

`RuntimeConfig` holds what every training run shares, where and how it runs, its seed and its
cadence (params.yaml's `runtime` section); `GanConfig` and `DenoiserConfig` add each loop's own
settings to it. Each [guess] of METHOD.md is a field with the guessed default. `from_dict` takes a
flat mapping (the `runtime` section merged with a stage's; network arguments as one nested
mapping, e.g. `generator_kwargs`), refuses unknown keys by name, and accepts YAML's string forms
of numbers ("2e-4", "50/255").
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pngan import models
from pngan.noise.fitting import INTENSITY_AXES
from pngan import noise
from pngan import params as P
from pngan.registry import Registry, RegistryError, check_arguments
from pngan.runtime import json_digest, select_device

_FRACTION = re.compile(r"^\s*([-+0-9.eE]+)\s*/\s*([-+0-9.eE]+)\s*$")


@dataclass
class RuntimeConfig:
    """Where and how a training run runs, its seed and its cadence: params.yaml's `runtime` section,
    which every training stage takes (its own section may set any of these keys for itself)."""

    # settings that may change between a run and its resumption (schedule length, cadence,
    # where and how fast it runs); every other field is part of the run's identity hash
    RESUME_SAFE: ClassVar[frozenset[str]] = frozenset(
        {
            "steps", "val_every", "val_samples", "ckpt_every", "log_every", "nan_patience",
            "device", "num_workers", "compile", "channels_last", "precision", "deterministic",
        }
    )

    # cadence, guard
    val_every: int = 1000  # validate every N steps (0: only at the end)
    ckpt_every: int = 1000
    log_every: int = 100
    nan_patience: int = 10  # consecutive non-finite steps before training stops
    # where and how it runs
    precision: str = "auto"  # auto: bf16 on CUDA and CPUs with fast bf16, else fp32
    device: str = "auto"
    deterministic: bool = False
    seed: int = 0
    num_workers: int = 0
    compile: bool = False  # torch.compile the trained networks
    channels_last: bool = False  # NHWC memory layout for the networks and batches (see benchmarks/bench_train)

    def __post_init__(self) -> None:
        for name in ("ckpt_every", "log_every", "nan_patience"):
            self._require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        self._require(self.val_every >= 0, f"val_every must be >= 0 (0: validate only at the end), got {self.val_every}")
        self._require(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")
        self._require(self.precision in ("auto", "fp32", "bf16"), f"precision must be auto, fp32 or bf16, got '{self.precision}'")
        if self.device != "auto":
            select_device(self.device)  # a device this machine lacks fails now, not after the data is read

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str | None = None):
        """Build from a flat mapping; unknown keys raise `pngan.params.ParamsError` naming them."""
        where = where or cls.__name__
        names = {f.name for f in dataclasses.fields(cls)}
        P.check_known(values, names, where)
        hints = typing.get_type_hints(cls)
        try:
            return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()})
        except P.ParamsError as err:
            raise P.ParamsError(f"{where}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity_hash(self) -> str:
        """Hash of every setting that shapes the model or what it is trained to do.

        A checkpoint whose hash differs is never resumed (it is moved aside instead).
        """
        shaping = {k: v for k, v in self.to_dict().items() if k not in self.RESUME_SAFE}
        return json_digest({"type": type(self).__name__, **shaping})

    def _require(self, ok: bool, message: str) -> None:
        if not ok:
            raise P.ParamsError(message)

    def _require_buildable(self, registry: Registry, name_field: str, kwargs_field: str | None = None) -> None:
        """The named network or noise model exists and takes these arguments (checked now, so a
        typo fails before any stage starts, not in the middle of one)."""
        name = getattr(self, name_field)
        try:
            cls = registry.resolve(name, trusted=True)  # the user's own settings may name code
            if kwargs_field is not None:
                check_arguments(cls, getattr(self, kwargs_field), f"{registry.what} '{name}'")
        except RegistryError as err:
            raise P.ParamsError(f"{kwargs_field if kwargs_field and name in registry else name_field}: {err}") from None

    def _check_schedule(self) -> None:
        """What both loops' own settings share: sizes and steps, Adam's betas."""
        for name in ("crop", "batch", "steps"):
            self._require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        self._require(len(self.betas) == 2, f"betas must be two numbers, got {self.betas}")


@dataclass
class GanConfig(RuntimeConfig):
    """PNGAN adversarial training (params.yaml section `train_pngan`)."""

    # networks: registry names (pngan.models) or 'package.module:Class'; kwargs passed as given
    generator: str = "smnet"  # 'smnet' (paper) or 'simnet' (what the authors shipped)
    generator_kwargs: dict[str, Any] = field(default_factory=dict)  # {} = the architecture's paper defaults
    discriminator: str = "pixel_discriminator"
    discriminator_kwargs: dict[str, Any] = field(default_factory=dict)
    # synthetic input y_s
    setting: int = 1  # 1: AWGN sigma = input_sigma; 2: camera pipeline with published random ranges
    input_sigma: float = 50 / 255
    input_noise: str = "auto"  # auto: the setting's model ('awgn' / 'camera_random'); or a pngan.noise name, 'module:Class'
    input_noise_kwargs: dict[str, Any] = field(default_factory=dict)  # extra arguments of that noise model
    input_noise_fixed: bool = False  # True: one pre-drawn realisation per training image (the authors' code)
    # data
    crop: int = 128
    batch: int = 8  # per process
    steps: int = 60000
    # optimisation [guess]
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_min: float = 1e-6  # cosine decay floor
    betas: tuple[float, float] = (0.9, 0.999)
    d_steps: int = 1  # discriminator updates per generator update
    # losses
    w_l1: float = 1.0
    w_perceptual: float = 6e-3
    w_adv: float = 8e-4
    ra_mean: str = "batch_space"  # mean of C(b) in D_Ra: over batch and space, or per pixel over the batch
    perceptual: str = "auto"  # auto: vgg19 when weights are given, else the denoiser's features; or 'none'
    vgg_weights: str | None = None  # torchvision-layout VGG19 state dict
    perceptual_layer: str = "auto"  # vgg19: 'conv5_4'; denoiser: a module name ('auto': last wide conv)
    perceptual_norm: str = "channel"  # 'channel' standardises each feature channel; 'none' = raw
    val_samples: int = 1  # generator draws per validation crop

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_schedule()
        self._require(self.setting in (1, 2), f"setting must be 1 or 2, got {self.setting}")
        self._require(self.input_sigma > 0, f"input_sigma must be > 0, got {self.input_sigma}")
        self._require(self.d_steps >= 1, f"d_steps must be >= 1, got {self.d_steps}")
        self._require(self.val_samples >= 1, f"val_samples must be >= 1, got {self.val_samples}")
        self._require(self.ra_mean in ("batch_space", "batch"), f"ra_mean must be batch_space or batch, got '{self.ra_mean}'")
        self._require(self.perceptual in ("auto", "vgg19", "denoiser", "none"), f"perceptual must be auto, vgg19, denoiser or none, got '{self.perceptual}'")
        self._require(self.perceptual_norm in ("channel", "none"), f"perceptual_norm must be channel or none, got '{self.perceptual_norm}'")
        self._require(not (self.perceptual == "vgg19" and not self.vgg_weights), "perceptual: vgg19 needs vgg_weights (a local VGG19 state dict)")
        for name in ("w_l1", "w_perceptual", "w_adv"):
            self._require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        self._require_buildable(models.REGISTRY, "generator", "generator_kwargs")
        self._require_buildable(models.REGISTRY, "discriminator", "discriminator_kwargs")
        if self.input_noise != "auto":
            self._require_buildable(noise.REGISTRY, "input_noise", "input_noise_kwargs")


# the paper's synthetic input, which the noise-aware generator does not have
_SYNTHETIC_INPUT_FIELDS = ("setting", "input_sigma", "input_noise", "input_noise_kwargs", "input_noise_fixed")
LEVEL_SOURCES = ("auto", "camera", "iso_law", "all")
STARTS = ("white", "correlated")  # what a filtering noise-aware G starts from


@dataclass
class AwareGanConfig(GanConfig):
    """Noise-aware PNGAN (params.yaml section `train_pngan_aware`; pngan.train.aware): G shapes a
    unit-level noise field that a level map, fitted per camera setting on the training split,
    scales. The losses, schedule and runtime settings are GanConfig's; its synthetic-input
    settings do not apply and must stay at their defaults."""

    generator: str = "aware_generator"
    # the condition [guess]
    level_source: str = "auto"  # 'camera': one level function per camera setting; 'iso_law': per camera, scaled by ISO; 'all': one for every pair; 'auto': iso_law when pairs carry camera and ISO, else camera
    level_knots: int = 9  # knots of the piecewise-linear level functions (clean intensity -> std)
    level_axis: str = "channel"  # the level against each channel's clean value, or against the clean luminance (docs/METHOD.md §8.5)
    hold_level: bool = True  # the level is structural: G's field is rescaled to unit RMS per image and channel (METHOD.md §6.6)
    residual_from_z: bool = True  # G's zero-initialised tail adds to z: step 0 is the classical draw
    start: str = "white"  # step 0 of a filtering G (generator_kwargs kernel > 0): white noise, or the correlated Gaussian fitted on the training split
    condition_discriminator: bool = True  # D judges [y, s] (6 channels); false: y alone, as the paper's
    lr_gain: float = 3e-2  # the colour gain's learning rate (generator_kwargs gain_width > 0; the rest of G keeps lr_g), same cosine schedule
    estimator_options: dict[str, Any] = field(default_factory=dict)  # options of the blind level estimator (reference mode), stored in the file

    def __post_init__(self) -> None:
        defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory() for f in dataclasses.fields(GanConfig)}
        changed = [name for name in _SYNTHETIC_INPUT_FIELDS if getattr(self, name) != defaults[name]]
        self._require(not changed, f"{', '.join(changed)}: the noise-aware generator has no synthetic input; leave these at their defaults")
        self._require(self.level_source in LEVEL_SOURCES, f"level_source must be one of {', '.join(LEVEL_SOURCES)}, got '{self.level_source}'")
        self._require(self.level_knots >= 2, f"level_knots must be >= 2, got {self.level_knots}")
        self._require(self.level_axis in INTENSITY_AXES, f"level_axis must be one of {', '.join(INTENSITY_AXES)}, got '{self.level_axis}'")
        for kwargs, key in ((self.generator_kwargs, "residual_from_z"), (self.generator_kwargs, "start_width"), (self.generator_kwargs, "start_mixing"),
                            (self.discriminator_kwargs, "in_channels")):
            self._require(key not in kwargs, f"{key} is set by the noise-aware task (see residual_from_z, start, condition_discriminator), not in the network's kwargs")
        self._require(self.start in STARTS, f"start must be one of {', '.join(STARTS)}, got '{self.start}'")
        self._require(self.start == "white" or self.generator_kwargs.get("kernel", 0), "start: correlated needs a filtering generator (generator_kwargs: {kernel: 5})")
        self._require(self.lr_gain > 0, f"lr_gain must be > 0, got {self.lr_gain}")
        super().__post_init__()
        for name, kwargs in (("generator", self.network_kwargs("generator")), ("discriminator", self.network_kwargs("discriminator"))):
            try:
                check_arguments(models.REGISTRY.resolve(getattr(self, name), trusted=True), kwargs, f"network '{getattr(self, name)}'")
                models.build(getattr(self, name), trusted=True, **kwargs)  # small networks: values checked now (e.g. gain_gradient without a gain)
            except RegistryError as err:
                raise P.ParamsError(f"{name}: {err}") from None

    def network_kwargs(self, which: str) -> dict[str, Any]:
        """The arguments the task builds a network with: the settings' kwargs plus what the
        condition needs (G's residual_from_z, D's input channels)."""
        if which == "generator":
            return {**self.generator_kwargs, "residual_from_z": self.residual_from_z}
        return {**self.discriminator_kwargs, "in_channels": 6} if self.condition_discriminator else dict(self.discriminator_kwargs)


@dataclass
class DenoiserConfig(RuntimeConfig):
    """Denoiser training: the frozen D_d (`denoiser_real`), the PGap denoiser, fine-tuning."""

    arch: str = "dncnn"  # registry name (pngan.models) or 'package.module:Class'
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # denoiser file or state dict to start from (fine-tuning)
    fake_ratio: float = 0.0  # share of training samples drawn from generated pairs (0: real only)
    crop: int = 64
    batch: int = 16
    steps: int = 10000
    lr: float = 1e-4
    lr_min: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.999)
    loss: str = "l1"  # 'l1', 'charbonnier' or 'mse'
    charbonnier_eps: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_schedule()
        self._require(self.loss in ("l1", "charbonnier", "mse"), f"loss must be l1, charbonnier or mse, got '{self.loss}'")
        self._require(0.0 <= self.fake_ratio <= 1.0, f"fake_ratio must be in [0, 1], got {self.fake_ratio}")
        self._require_buildable(models.REGISTRY, "arch", "arch_kwargs")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """YAML value -> the field's type; numbers written as strings ('2e-4', '50/255') are parsed."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if hint is float:
        return _as_float(value, where)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise P.ParamsError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise P.ParamsError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise P.ParamsError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise P.ParamsError(f"{where}: expected a list, got {value!r}")
        return tuple(_as_float(v, where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise P.ParamsError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    return value


def _as_float(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise P.ParamsError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _FRACTION.match(value)
        try:
            return float(match.group(1)) / float(match.group(2)) if match else float(value)
        except (ValueError, ZeroDivisionError):
            pass
    raise P.ParamsError(f"{where}: expected a number, got {value!r}")
