"""PNGAN training-step benchmark: one D step + one G step through the frozen D_d.

Measures steps/s, images/s, peak memory (CUDA allocator peak; on a CPU the peak resident set of
a fresh process per precision) and the achieved FLOP/s (FLOPs of one step counted with
torch.utils.flop_counter.FlopCounterMode) as a fraction of a ceiling measured in the same run:
a dense 3x3 conv 64->64 forward at the same batch, crop, dtype and device. fp32 and bf16.
128x128 crops; on a GPU batch 16 and the paper's network sizes, on a CPU batch 8 and the
laptop sizes of params.yaml (`--paper-size`: the paper's, about 40 s a step on 2 cores);
`quick` shrinks the CPU run. The speed options are measured as further variants: channels_last
(and on CUDA torch.compile).

Run: `python -m benchmarks.bench_train [--quick] [--paper-size]`.
"""

from __future__ import annotations

from typing import Any

import torch

CEILING_CHANNELS = 64
# speed options measured beside plain fp32/bf16: name -> (precision, GanConfig options)
CPU_VARIANTS = {
    "fp32+channels_last": ("fp32", {"channels_last": True}),
    "bf16+channels_last": ("bf16", {"channels_last": True}),
}
CUDA_VARIANTS = {
    **CPU_VARIANTS,
    "bf16+compile": ("bf16", {"compile": True}),
    "bf16+channels_last+compile": ("bf16", {"channels_last": True, "compile": True}),
}


def conv_ceiling(device: torch.device, precision: str, batch: int, crop: int, repeat: int) -> float:
    """FLOP/s of a dense 3x3 conv 64->64 forward (2 * MACs) at this batch, crop, dtype and device:
    the faster of the NCHW and (on CUDA) NHWC memory layouts."""
    from benchmarks.common import timeit
    from pngan.runtime import autocast

    flops = 2 * batch * crop * crop * CEILING_CHANNELS * CEILING_CHANNELS * 9
    best = 0.0
    for channels_last in (False, True) if device.type == "cuda" else (False,):
        layout = torch.channels_last if channels_last else torch.contiguous_format
        conv = torch.nn.Conv2d(CEILING_CHANNELS, CEILING_CHANNELS, 3, padding=1).to(device, memory_format=layout)
        x = torch.randn(batch, CEILING_CHANNELS, crop, crop, device=device).contiguous(memory_format=layout)

        @torch.no_grad()
        def run() -> None:
            with autocast(device, precision):
                conv(x)

        best = max(best, flops / timeit(run, repeat=repeat, warmup=2))
    return best


def _task(precision: str, device: torch.device, networks: dict[str, Any], crop: int, batch: int, options: dict[str, Any]):
    from pngan.models import build as build_network
    from pngan.train.loop import NanGuard, Runtime
    from pngan.train.config import GanConfig
    from pngan.train.distributed import DistContext
    from pngan.train.gan import PnganTask

    cfg = GanConfig(
        generator=networks["generator"],
        generator_kwargs=networks.get("generator_kwargs", {}),
        discriminator=networks["discriminator"],
        discriminator_kwargs=networks.get("discriminator_kwargs", {}),
        crop=crop,
        batch=batch,
        steps=1000,
        precision=precision,
        device=str(device),
        **options,
    )
    ctx = DistContext(device=device)
    denoiser = build_network(networks["denoiser"], trusted=True, **networks.get("denoiser_kwargs", {}))
    return PnganTask(cfg, Runtime(ctx, precision), denoiser, None, NanGuard(10**9, ctx))


def measure(
    precision: str, device: torch.device, networks: dict[str, Any], crop: int, batch: int, repeat: int,
    options: dict[str, Any] | None = None, step_flops: float | None = None,
) -> dict[str, float]:
    """One variant: `options` are GanConfig speed options (channels_last, compile); `step_flops`
    the FLOPs of one step when already counted (a compiled module is not counted again)."""
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.common import peak_memory, timeit
    from pngan.train.loop import move_batch

    options = options or {}
    torch.manual_seed(0)
    task = _task(precision, device, networks, crop, batch, options)
    clean = torch.rand(batch, 3, crop, crop, device=device)
    noisy = (clean + 0.08 * torch.randn_like(clean)).clamp(0, 1)
    batch_data = move_batch({"clean": clean, "noisy": noisy}, device, options.get("channels_last", False))
    counter = {"step": 0}

    def step() -> None:
        task.train_step(batch_data, counter["step"], diagnose=False)
        counter["step"] += 1

    if step_flops is None:  # the counted step is also the warm-up
        with FlopCounterMode(display=False) as counter_mode:
            step()
        step_flops = counter_mode.get_total_flops()
    else:
        step()  # warm-up (compilation)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = timeit(step, repeat=repeat, warmup=1 if device.type == "cuda" else 0)
    ceiling = conv_ceiling(device, precision, batch, crop, repeat=max(repeat, 3))
    achieved = step_flops / seconds
    return {
        "precision": precision,
        **options,
        "steps_per_s": 1.0 / seconds,
        "images_per_s": batch / seconds,
        "seconds_per_step": seconds,
        "gflop_per_step": step_flops / 1e9,
        "achieved_gflops": achieved / 1e9,
        "ceiling_gflops": ceiling / 1e9,
        "fraction_of_ceiling": achieved / ceiling,
        "peak_memory_mib": peak_memory(device) / 2**20,
    }


def _measure_isolated(*args: Any) -> dict[str, float]:
    """`measure(*args)`, on a CPU in a fresh process, whose peak resident set (imports, networks,
    the step) is then this variant's alone."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, *args).result()


def run(
    quick: bool,
    generator: str = "smnet",
    discriminator: str = "pixel_discriminator",
    denoiser: str = "ridnet",
    generator_kwargs: dict[str, Any] | None = None,
    discriminator_kwargs: dict[str, Any] | None = None,
    denoiser_kwargs: dict[str, Any] | None = None,
    paper_size: bool | None = None,
) -> dict[str, Any]:
    """fp32 and bf16 PNGAN steps; network sizes: the paper's (the networks' defaults) on a GPU or
    with `paper_size`, else params.yaml's laptop sizes; explicit kwargs override either."""
    from benchmarks.common import laptop_sizes
    from pngan.runtime import run_info, select_device

    device = select_device("auto")
    if device.type == "cuda":
        crop, batch, repeat = 128, 16, 5 if quick else 20
    else:
        crop, batch, repeat = (32, 2, 1) if quick else (128, 8, 1)
    paper_size = device.type == "cuda" if paper_size is None else paper_size
    sizes = {} if paper_size else laptop_sizes()
    networks = {
        "generator": generator,
        "generator_kwargs": generator_kwargs or sizes.get("generator_kwargs", {}),
        "discriminator": discriminator,
        "discriminator_kwargs": discriminator_kwargs or sizes.get("discriminator_kwargs", {}),
        "denoiser": denoiser,
        "denoiser_kwargs": denoiser_kwargs or sizes.get("denoiser_kwargs", {}),
        "sizes": "paper" if paper_size else "laptop (params.yaml)",
    }
    on_gpu = device.type == "cuda"
    run_one = measure if on_gpu else _measure_isolated
    results = {p: run_one(p, device, networks, crop, batch, repeat) for p in ("fp32", "bf16")}
    for name, (precision, options) in (CUDA_VARIANTS if on_gpu else CPU_VARIANTS).items():
        try:  # the speed options; each is kept only where it helps (README)
            results[name] = run_one(precision, device, networks, crop, batch, repeat, options, results[precision]["gflop_per_step"] * 1e9)
        except Exception as error:  # noqa: BLE001 - a failed option is a result, not a crash
            results[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
    line = "; ".join(
        f"{p} {r['steps_per_s']:.3g} steps/s, {r['images_per_s']:.3g} img/s, {r['fraction_of_ceiling']:.2f} of conv ceiling, {r['peak_memory_mib']:.0f} MiB"
        if "error" not in r else f"{p} failed"
        for p, r in results.items()
    )
    return {
        "summary": f"{crop}x{crop} batch {batch} on {device.type}, {networks['sizes']} networks: {line}",
        "what": "one PNGAN training step (D step + G step through the frozen D_d)",
        "networks": networks,
        "crop": crop,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "results": results,
        **run_info(device),
    }


def main() -> None:
    from benchmarks.common import standalone

    standalone("train", run, __doc__, flags={"--paper-size": "the paper's network sizes on a CPU too"})


if __name__ == "__main__":
    main()
