"""Speed and memory of NISPA against Avalanche's ``Naive``, measured side by side.

    python -m benchmarks.speed                      # everything (about 6 minutes here)
    python -m benchmarks.speed --skip-full-run      # only the per-epoch and memory parts

Every measurement runs in a fresh process (``spawn``), one after the other, so that
each has its own peak memory and none competes with another for the cores:

(a) **per-epoch cost**: epochs of NISPA and of ``Naive`` on the same dense backbone and
    data (the paper MLP on Split MNIST's first task; the paper CNN on synthetic
    32x32 inputs). NISPA's epoch counts everything it adds per epoch: gradient and
    weight masking, the NaN check, the validation pass and the best-epoch copies.
    Both read the data through Avalanche's data loader; a third row shows NISPA with
    ``cache_data=True`` (the experience held as tensors, as the official code does).
(b) **where NISPA's time goes** in a full run of the paper configuration on Split
    MNIST (``NISPA.timings``): training epochs, validation, snapshots (best-epoch and
    revert copies), selection + rewiring (``phase_end``) and promotion + freezing +
    re-initialisation (``experience_end``).
(c) **peak memory** (peak RSS of each process) of NISPA against ``Naive``.

Results go to ``benchmarks/results/speed/`` as ``speed.md`` and ``speed.json``, with
the command that produced them. Nothing here is a test: the tests never time.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing as mp
import os
import platform
import pstats
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from avalanche_nispa.atomic import atomic_write_text

__all__ = ["PAPER_SETTINGS", "main", "measure", "paper_settings", "render"]

#: Official NISPA code on this machine, paper MLP settings, 2 threads (issue 6).
OFFICIAL_FULL_RUN_SECONDS = {"split_mnist_seed0": 350.0, "split_mnist_seed1": 250.0}
TARGETS = {"mlp_epoch_ratio": 1.10, "cnn_epoch_ratio": 1.15, "overhead_share": 0.03,
           "memory_ratio": 1.20}


# --------------------------------------------------------------------- jobs
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _mnist_first_task():
    from avalanche_nispa.benchmarks import split_mnist

    return split_mnist(seed=0)


def _synthetic_cifar(n_train: int):
    import torch
    from avalanche.benchmarks import nc_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2 * n_train, 3, 32, 32, generator=gen)
    y = torch.arange(4).repeat_interleave(n_train // 2)
    x_test, y_test = x[::4], y[::4]
    return nc_benchmark(
        _make_taskaware_tensor_classification_dataset(x, y),
        _make_taskaware_tensor_classification_dataset(x_test, y_test),
        2, task_labels=True, fixed_class_order=[0, 1, 2, 3],
    )


class _EpochTimer:
    """Wall time of every training epoch (before_training_epoch → after_training_epoch)."""

    def __init__(self) -> None:
        self.epochs: List[float] = []
        self._start = 0.0

    @staticmethod
    def _wait(strategy) -> None:
        import torch

        if torch.device(strategy.device).type == "cuda":  # queued kernels count
            torch.cuda.synchronize(strategy.device)

    def before_training_epoch(self, strategy, **kwargs) -> None:
        self._wait(strategy)
        self._start = time.perf_counter()

    def after_training_epoch(self, strategy, **kwargs) -> None:
        self._wait(strategy)
        self.epochs.append(time.perf_counter() - self._start)


#: Where each network's paper settings come from: (benchmark configuration, its NISPA).
PAPER_SETTINGS = {"mlp": "split_mnist", "cnn": "split_cifar10"}


def paper_settings(net: str, strategy: str, **overrides: Any) -> tuple[Any, Dict[str, Any]]:
    """The benchmark configuration of ``net`` and ``strategy``'s flat settings there.

    Naive gets NISPA's optimizer and batch sizes, so that both train alike.
    """
    from avalanche_nispa.harness.configs import get_config

    cfg = get_config(PAPER_SETTINGS[net])
    nispa = cfg.hparams("nispa")
    shared = {key: nispa[key] for key in ("optimizer", "lr", "batch_size", "eval_batch_size")}
    return cfg, cfg.hparams(strategy, {**shared, **overrides})


def _build(strategy: str, cfg: Any, hp: Dict[str, Any], plugins: Sequence[Any], evaluator: Any,
           device: str = "cpu"):
    from avalanche_nispa.harness.strategies import build_strategy

    return build_strategy(strategy, cfg.backbone, cfg.n_classes, hp, n_experiences=cfg.n_experiences,
                          device=device, evaluator=evaluator, plugins=plugins,
                          scenario=cfg.scenario).strategy


def _job(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One measurement, in its own process."""
    import torch
    from avalanche.core import SupervisedPlugin
    from avalanche.training.plugins import EvaluationPlugin

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    net = spec["net"]
    benchmark = _mnist_first_task() if net == "mlp" else _synthetic_cifar(spec["cnn_samples"])
    experience = benchmark.train_stream[0]
    timer = type("EpochTimerPlugin", (_EpochTimer, SupervisedPlugin), {})()
    epochs = spec["epochs"]
    if spec["strategy"] == "naive":
        cfg, hp = paper_settings(net, "naive", epochs=epochs)
    else:
        cfg, hp = paper_settings(net, "nispa", phase_epochs=epochs, max_phases=2,
                                 cache_data=spec.get("cache_data", False))
    strategy = _build(spec["strategy"], cfg, hp, [timer], EvaluationPlugin(loggers=[]),
                      device=spec.get("device", "cpu"))
    rss_before = _peak_rss_mb()
    profile = cProfile.Profile() if spec.get("profile") else None
    start = time.perf_counter()
    if profile:
        profile.enable()
    strategy.train(experience)
    if profile:
        profile.disable()
    seconds = time.perf_counter() - start
    epoch_times = timer.epochs
    timings = dict(getattr(strategy, "timings", {}))
    per_epoch_extra = 0.0
    if timings:
        # validation and best-epoch copies happen once per epoch, outside the epoch hooks
        per_epoch_extra = (timings.get("validation", 0.0) + timings.get("snapshots", 0.0)) / len(epoch_times)
    result = {
        "spec": spec,
        "epoch_seconds": [round(t, 4) for t in epoch_times],
        # the first epoch of a process pays one-off costs (allocations, MKL setup)
        "epoch_cost": statistics.median(epoch_times[1:] or epoch_times) + per_epoch_extra,
        "seconds": seconds,
        "timings": timings,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_training_mb": rss_before,
    }
    if profile:
        stream = io.StringIO()
        pstats.Stats(profile, stream=stream).sort_stats("tottime").print_stats(10)
        result["profile"] = _without_local_paths(stream.getvalue())
    return result


def _without_local_paths(text: str) -> str:
    """Profile lines name files; keep them relative to the environment or the repo."""
    import site
    import sysconfig

    prefixes = [sysconfig.get_paths()["purelib"], *site.getsitepackages(), os.getcwd()]
    for prefix in sorted(set(prefixes), key=len, reverse=True):
        label = "" if prefix == os.getcwd() else "<site-packages>"
        text = text.replace(prefix.rstrip("/") + "/", f"{label}/" if label else "")
    return text


def _full_run(spec: Dict[str, Any]) -> Dict[str, Any]:
    """The paper configuration on the whole Split MNIST stream."""
    import torch
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.evaluation.metrics import accuracy_metrics

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    benchmark = _mnist_first_task()
    name = "nispa_original" if spec["mode"] == "original" else "nispa"
    cfg, hp = paper_settings("mlp", name)
    strategy = _build(name, cfg, hp, [], EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]))
    start = time.perf_counter()
    for experience in benchmark.train_stream:
        strategy.train(experience)
    seconds = time.perf_counter() - start
    results = strategy.eval(benchmark.test_stream)
    accuracies = [results[f"Top1_Acc_Exp/eval_phase/test_stream/Task{t:03d}/Exp{t:03d}"] for t in range(5)]
    return {
        "spec": spec,
        "seconds": seconds,
        "timings": dict(strategy.timings),
        "phases": [h["phases"] for h in strategy.phase_history],
        "epochs": [h["epochs"] for h in strategy.phase_history],
        "accuracy": 100 * sum(accuracies) / len(accuracies),
        "per_task_accuracy": [round(100 * a, 2) for a in accuracies],
        "peak_rss_mb": _peak_rss_mb(),
    }


def _in_fresh_process(function, spec: Dict[str, Any]) -> Dict[str, Any]:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, (spec,))


# ------------------------------------------------------------------ measure
def measure(*, threads: int = 2, epochs: int = 4, repeats: int = 2, cnn_samples: int = 1024,
            cnn_epochs: int = 3, full_run: bool = True, seeds: Sequence[int] = (0,),
            device: str = "cpu", log: Callable[[str], Any] = print) -> Dict[str, Any]:
    """Run every measurement; returns the raw results and the ratios. ``device`` is
    that of the per-epoch measurements (the full runs stay on the CPU)."""
    rows: Dict[str, List[Dict[str, Any]]] = {}

    def run(name: str, spec: Dict[str, Any]) -> None:
        spec = {"threads": threads, "cnn_samples": cnn_samples, "device": device, **spec}
        result = _in_fresh_process(_job, spec)
        rows.setdefault(name, []).append(result)
        log(f"{name}: epoch {result['epoch_cost']:.3f} s, peak RSS {result['peak_rss_mb']:.0f} MB")

    for _ in range(repeats):  # interleaved, so drifts of the machine hit both alike
        run("naive_mlp", {"strategy": "naive", "net": "mlp", "epochs": epochs})
        run("nispa_mlp", {"strategy": "nispa", "net": "mlp", "epochs": epochs})
        run("nispa_mlp_cached", {"strategy": "nispa", "net": "mlp", "epochs": epochs, "cache_data": True})
    for _ in range(repeats):
        run("naive_cnn", {"strategy": "naive", "net": "cnn", "epochs": cnn_epochs})
        run("nispa_cnn", {"strategy": "nispa", "net": "cnn", "epochs": cnn_epochs})
    run("nispa_mlp_profile", {"strategy": "nispa", "net": "mlp", "epochs": epochs, "profile": True,
                              "cache_data": True})

    def cost(name: str) -> float:
        return statistics.median(r["epoch_cost"] for r in rows[name])

    def peak(name: str) -> float:
        return max(r["peak_rss_mb"] for r in rows[name])

    summary: Dict[str, Any] = {
        "epoch_seconds": {name: cost(name) for name in rows if not name.endswith("profile")},
        "peak_rss_mb": {name: peak(name) for name in rows if not name.endswith("profile")},
        "mlp_epoch_ratio": cost("nispa_mlp") / cost("naive_mlp"),
        "mlp_epoch_ratio_cached": cost("nispa_mlp_cached") / cost("naive_mlp"),
        "cnn_epoch_ratio": cost("nispa_cnn") / cost("naive_cnn"),
        "memory_ratio_mlp": peak("nispa_mlp") / peak("naive_mlp"),
        "memory_ratio_mlp_cached": peak("nispa_mlp_cached") / peak("naive_mlp"),
        "memory_ratio_cnn": peak("nispa_cnn") / peak("naive_cnn"),
        "profile": rows["nispa_mlp_profile"][0].get("profile", ""),
    }
    full_runs = []
    if full_run:
        for seed in seeds:
            for mode in ("clean", "original"):
                result = _in_fresh_process(_full_run, {"threads": threads, "seed": seed, "mode": mode})
                full_runs.append(result)
                log(f"full run seed {seed} {mode}: {result['seconds']:.0f} s, "
                    f"accuracy {result['accuracy']:.2f} %")
    summary["full_runs"] = full_runs
    return {"summary": summary, "runs": rows}


# ------------------------------------------------------------------- report
def _share(timings: Dict[str, float], total: float) -> Dict[str, float]:
    return {part: seconds / total for part, seconds in timings.items()}


def _describe_paper_mlp() -> str:
    hp = paper_settings("mlp", "nispa")[1]
    return (f"Paper MLP at {hp['density'] * 100:g} %, {hp['optimizer'].capitalize()} lr {hp['lr']:g}, "
            f"batch {hp['batch_size']}, e = {hp['phase_epochs']}, a_f = {hp['accuracy_drop_threshold']:g}, "
            f"{hp['tau_schedule']} k = {hp['tau_param']:g}, `cache_data={hp['cache_data']}`")


def render(measured: Dict[str, Any], command: str, context: str) -> str:
    """speed.md: the measurements against their targets, and where NISPA's time goes."""
    s = measured["summary"]
    mark = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    lines = [
        "# NISPA speed and memory against Avalanche's Naive",
        "",
        f"Command: `{command}`",
        "",
        context,
        "",
        "## (a) Per-epoch cost, same backbone and data",
        "",
        "| | Naive (s/epoch) | NISPA (s/epoch) | ratio | target | |",
        "|---|---|---|---|---|---|",
        f"| paper MLP, Split MNIST task 1 | {s['epoch_seconds']['naive_mlp']:.3f} | "
        f"{s['epoch_seconds']['nispa_mlp']:.3f} | {s['mlp_epoch_ratio']:.3f} | ≤ {TARGETS['mlp_epoch_ratio']} | "
        f"{mark(s['mlp_epoch_ratio'] <= TARGETS['mlp_epoch_ratio'])} |",
        f"| paper MLP, NISPA with `cache_data=True` | {s['epoch_seconds']['naive_mlp']:.3f} | "
        f"{s['epoch_seconds']['nispa_mlp_cached']:.3f} | {s['mlp_epoch_ratio_cached']:.3f} | | |",
        f"| paper CNN, synthetic 32x32 | {s['epoch_seconds']['naive_cnn']:.3f} | "
        f"{s['epoch_seconds']['nispa_cnn']:.3f} | {s['cnn_epoch_ratio']:.3f} | ≤ {TARGETS['cnn_epoch_ratio']} | "
        f"{mark(s['cnn_epoch_ratio'] <= TARGETS['cnn_epoch_ratio'])} |",
        "",
        "NISPA's epoch includes its validation pass and best-epoch copies. It trains on 90 % "
        "of the experience (10 % is held out for validation), Naive on all of it.",
        "",
        "## (c) Peak memory (peak RSS of the measuring process)",
        "",
        "| | Naive (MB) | NISPA (MB) | ratio | target | |",
        "|---|---|---|---|---|---|",
        f"| paper MLP | {s['peak_rss_mb']['naive_mlp']:.0f} | {s['peak_rss_mb']['nispa_mlp']:.0f} | "
        f"{s['memory_ratio_mlp']:.3f} | ≤ {TARGETS['memory_ratio']} | "
        f"{mark(s['memory_ratio_mlp'] <= TARGETS['memory_ratio'])} |",
        f"| paper MLP, `cache_data=True` | {s['peak_rss_mb']['naive_mlp']:.0f} | "
        f"{s['peak_rss_mb']['nispa_mlp_cached']:.0f} | {s['memory_ratio_mlp_cached']:.3f} | | |",
        f"| paper CNN | {s['peak_rss_mb']['naive_cnn']:.0f} | {s['peak_rss_mb']['nispa_cnn']:.0f} | "
        f"{s['memory_ratio_cnn']:.3f} | ≤ {TARGETS['memory_ratio']} | "
        f"{mark(s['memory_ratio_cnn'] <= TARGETS['memory_ratio'])} |",
        "",
    ]
    if s["full_runs"]:
        lines += [
            "## (b) Full runs of the paper configuration on Split MNIST, and where the time goes",
            "",
            f"{_describe_paper_mlp()}. The official code took about "
            f"{OFFICIAL_FULL_RUN_SECONDS['split_mnist_seed0']:.0f} s (seed 0) on this machine.",
            "",
            "| seed | mode | wall (s) | vs official | accuracy (%) | phases per task | epochs | training | "
            "validation | snapshots | selection + rewiring | promotion + re-init | overhead share | target |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for run in s["full_runs"]:
            t = run["timings"]
            total = run["seconds"]
            share = _share(t, total)
            overhead = share.get("phase_end", 0) + share.get("experience_end", 0) + share.get("snapshots", 0)
            official = OFFICIAL_FULL_RUN_SECONDS.get(f"split_mnist_seed{run['spec']['seed']}")
            versus = f"{total / official:.2f}x" if official else "n/a"
            lines.append(
                f"| {run['spec']['seed']} | {run['spec']['mode']} | {total:.0f} | {versus} | {run['accuracy']:.2f} | "
                f"{run['phases']} | {sum(run['epochs'])} | {share.get('training', 0):.1%} | "
                f"{share.get('validation', 0):.1%} | {share.get('snapshots', 0):.1%} | "
                f"{share.get('phase_end', 0):.1%} | {share.get('experience_end', 0):.1%} | {overhead:.1%} | "
                f"≤ 3 %: {mark(overhead <= TARGETS['overhead_share'])} |"
            )
        lines += [
            "",
            "Overhead share = (snapshots + selection + rewiring + promotion/re-init) / wall time. "
            "The clean mode ranks units on the validation pass it already makes; the original mode "
            "makes one extra forward pass over the training split per phase, as the official code.",
            "",
        ]
    lines += ["## Profile of NISPA epochs (cProfile, paper MLP, cached data, top 10 by own time)", "",
              "```", s["profile"].strip(), "```", ""]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None, prog: str = "python -m benchmarks.speed") -> int:
    """The command line; writes speed.md and speed.json."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4, help="epochs per MLP measurement")
    parser.add_argument("--cnn-epochs", type=int, default=3)
    parser.add_argument("--cnn-samples", type=int, default=1024, help="synthetic images per CNN task")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seeds", default="0", help="seeds of the full runs, e.g. 0,1")
    parser.add_argument("--skip-full-run", action="store_true")
    parser.add_argument("--device", default="cpu", help="device of the per-epoch measurements")
    parser.add_argument("--output", default="benchmarks/results/speed")
    args = parser.parse_args(argv)
    command = f"{prog} " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    measured = measure(threads=args.threads, epochs=args.epochs, repeats=args.repeats,
                       cnn_samples=args.cnn_samples, cnn_epochs=args.cnn_epochs,
                       full_run=not args.skip_full_run, device=args.device,
                       seeds=[int(s) for s in args.seeds.split(",") if s])
    import torch

    context = (f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
               f"{args.threads} threads, per-epoch measurements on {args.device}; each measurement in "
               "its own process, one at a time.")
    out = Path(args.output)
    atomic_write_text(out / "speed.md", render(measured, command, context))
    atomic_write_text(out / "speed.json", json.dumps({"command": command, "context": context, **measured},
                                                     indent=2, default=float))
    print((out / "speed.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
