"""The vanilla vs layer-normalized RNN comparison: `make demo`, and the README's char-RNN result.

    python examples/char_rnn_experiment.py --out runs/demo          # `make demo`: 8 runs, one seed
    python examples/char_rnn_experiment.py --out runs/seeds --seeds 0 1 2 3 4 --perturb 1e-6 --jobs 1
    python examples/char_rnn_experiment.py --out runs/demo --resume # after Ctrl-C, or with --steps N to extend

A vanilla tanh RNN and a layer-normalized one (Ba, Kiros & Hinton 2016, eq. 4) trained side by side,
from equal initial weights, on the same batches:

    model      Embedding(V, 64) -> nn.RNN(64, H=128, layer_norm=False|True) -> Linear(H, V)
               vanilla:   h_t = tanh(a_t)        a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
               layernorm: h_t = tanh(LN(a_t))    LN gain 1, bias 0, eps 1e-5 (the two biases are kept)
    data       CPython's help texts (pydoc_data.topics, ~465 K chars); the last 10 % for validation
    training   random windows of 64 chars, batch 32, h0 = 0, Adam lr 2e-3, 1,500 updates
    the knob   --recurrent-scale S multiplies W_hh by S after init (S = 5: spectral radius about 3)
    clipping   every run twice: without clipping and with the global gradient norm clipped to 1
    seeds      --seeds: one set of runs per seed; --perturb P adds, for each, a twin whose initial
               weights are multiplied by 1 + P N(0, 1): a stand-in for another machine's rounding

Each run is an ordinary run folder of examples/char_rnn.py inside --out, trained by the same code
(examples/char_rnn_train.py), plus these measurements, all in float64 on a float64 copy of the
weights (examples/char_rnn_metrics.py): at step 0 and every --log-every updates, on the probe (32
validation sequences of 256 chars), the probe loss, saturation (fraction of |h| > 0.99), norm drift
(mean over t of (||h_t|| - ||h_{t-1}||)^2) and the RMS of a_t; at init and at the end, r(k) =
||dl_T/dh_{T-k}|| / ||dl_T/dh_T||, the distribution of what tanh receives, and the probe loss when
every weight and bias that makes a_t is multiplied by c. Five claims written down before the runs
(examples/char_rnn_claims.py) are then checked for each clipping setting, on every seed and twin.

Writes to --out: experiment.json (the settings), one folder per run (run.json, log.jsonl,
checkpoint.npz, model.npz, best.npz, training.png), metrics.json (every run's record and the
claims), results.md (the tables the README quotes), and comparison.png, hidden_states.png,
dynamics.png, invariance.png, headline.png. Ctrl-C stops every run after its current update and
saves it; --out DIR --resume continues.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from char_rnn import SecondInterrupt, check_new_folder, parse_clip
from char_rnn_claims import LOSS_TARGET, claims_by_clip, clip_label, first_step_below, format_claims, held_text, spread
from char_rnn_data import TextFileError
from char_rnn_files import (
    RunInUseError,
    RunLock,
    check_plain_json,
    expect_dict,
    expect_float,
    expect_int,
    expect_list,
    expect_str,
    locked_folder,
    read_json_file,
    safe_text,
    write_text_atomically,
)
from char_rnn_metrics import Float64Probes, check_dynamics
from char_rnn_model import ModelFileError
from char_rnn_plots import MODELS, make_plots
from char_rnn_train import (
    MAX_RUN_FILE_BYTES,
    RUN_FILE,
    Data,
    Options,
    RunConfig,
    command_prefix,
    json_safe,
    prepare_data,
    read_run_file,
    train_run,
    write_run_file,
)
from tqdm import tqdm

EXPERIMENT_FILE = "experiment.json"
EXPERIMENT_FORMAT = "tinygrad_ln char-rnn experiment"
INTERRUPTED_EXIT_STATUS = 130
DEFAULTS = {"models": list(MODELS), "recurrent_scale": [1.0, 5.0], "clip": [None, 1.0], "seeds": [0], "perturb": 0.0,
            "steps": 1500, "seq_len": 64, "batch": 32, "lr": 2e-3, "embed": 64, "hidden": 128, "fused": True}
# The settings that shape the runs' numbers; --resume compares the ones passed, --steps may change.
SETTINGS = tuple(DEFAULTS)
# How the runs log, checkpoint and sample; experiment.json keeps them, and --resume uses them unless told otherwise.
EXPERIMENT_OPTIONS = {"log_every": 25, "checkpoint_every": 250, "sample_length": 200}


@dataclass(frozen=True)
class RunSpec:
    model: str  # "vanilla" or "layernorm"
    scale: float  # recurrent init scale S
    clip: float | None  # max global gradient norm, None: no clipping
    seed: int
    perturbed: bool = False  # the twin whose initial weights are perturbed

    @property
    def name(self) -> str:
        clip = "noclip" if self.clip is None else f"clip{self.clip:g}"
        return f"{self.model}_scale{self.scale:g}_{clip}_seed{self.seed}" + ("_perturbed" if self.perturbed else "")

    def config(self, settings: dict[str, Any]) -> RunConfig:
        return RunConfig(model=self.model, embed=settings["embed"], hidden=settings["hidden"], steps=settings["steps"],
                         seq_len=settings["seq_len"], batch=settings["batch"], lr=settings["lr"], clip=self.clip,
                         seed=self.seed, fused=settings["fused"], recurrent_scale=self.scale,
                         perturbation=settings["perturb"] if self.perturbed else 0.0)


def run_specs(settings: dict[str, Any]) -> list[RunSpec]:
    twins = (False, True) if settings["perturb"] else (False,)
    return [RunSpec(model, scale, clip, seed, twin) for clip in settings["clip"]
            for scale in settings["recurrent_scale"] for seed in settings["seeds"] for twin in twins
            for model in settings["models"]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)

    def listed(values: list) -> str:
        return " ".join("none" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for v in values)

    grid = parser.add_argument_group("the runs (settings: --resume compares the ones you pass)")
    grid.add_argument("--text", metavar="FILE", help="UTF-8 text (default: CPython's help texts, pydoc_data.topics)")
    grid.add_argument("--models", nargs="+", choices=MODELS, help=f"(default: {listed(DEFAULTS['models'])})")
    grid.add_argument("--recurrent-scale", nargs="+", type=float, metavar="S",
                      help=f"multiply W_hh by S after init, one set of runs per S (default: "
                           f"{listed(DEFAULTS['recurrent_scale'])})")
    grid.add_argument("--clip", nargs="+", type=parse_clip, metavar="NORM",
                      help="clip the global gradient norm to NORM ('none': no clipping), one set of runs per value "
                           f"(default: {listed(DEFAULTS['clip'])})")
    grid.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                      help="one set of runs per seed (each >= 0); a seed fixes the initial weights and the batches "
                           f"(default: {listed(DEFAULTS['seeds'])})")
    grid.add_argument("--perturb", type=float, metavar="P",
                      help="also train, for every run, a twin whose initial weights are multiplied by 1 + P N(0, 1); "
                           "0: no twins (default: 0)")
    grid.add_argument("--steps", type=int, help=f"updates per run (default: {DEFAULTS['steps']}); with --resume: "
                                                "train every run to this many")
    grid.add_argument("--seq-len", type=int, help=f"characters per training window (default: {DEFAULTS['seq_len']})")
    grid.add_argument("--batch", type=int, help=f"windows per batch (default: {DEFAULTS['batch']})")
    grid.add_argument("--lr", type=float, help=f"Adam's learning rate (default: {DEFAULTS['lr']})")
    grid.add_argument("--embed", type=int, help=f"embedding size (default: {DEFAULTS['embed']})")
    grid.add_argument("--hidden", type=int, help=f"hidden units H (default: {DEFAULTS['hidden']})")
    grid.add_argument("--no-fused", action="store_const", const=False, dest="fused",
                      help="train through the primitive-op graph instead of the fused layer ops (slower)")
    running = parser.add_argument_group("running (the experiment keeps these too; free to change when resuming)")
    running.add_argument("--out", default=os.path.join("runs", "experiment"), metavar="DIR",
                         help="the experiment's folder (default: runs/experiment)")
    running.add_argument("--resume", action="store_true", help="continue the experiment in --out")
    running.add_argument("--log-every", type=int, default=argparse.SUPPRESS, metavar="N",
                         help=f"evaluate the probe every N updates (default: {EXPERIMENT_OPTIONS['log_every']})")
    running.add_argument("--checkpoint-every", type=int, default=argparse.SUPPRESS, metavar="N",
                         help="also write each run's checkpoint every N updates (default: "
                              f"{EXPERIMENT_OPTIONS['checkpoint_every']})")
    running.add_argument("--sample-length", type=int, default=argparse.SUPPRESS, metavar="CHARS",
                         help="characters printed from each seed-0 model at the end; 0: none (default: "
                              f"{EXPERIMENT_OPTIONS['sample_length']})")
    running.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                         help=f"runs trained at once, in separate processes (default: {min(2, os.cpu_count() or 1)})")
    running.add_argument("--threads", type=int, default=1,
                         help="BLAS threads per run (tl.set_num_threads); one is fastest for products this small, "
                              "0 leaves numpy's own count (default: 1)")
    args = parser.parse_args(argv)
    for name in ("steps", "seq_len", "batch", "log_every", "jobs", "embed", "hidden"):
        if getattr(args, name, None) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    for name in ("checkpoint_every", "sample_length", "threads"):
        if getattr(args, name, 0) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.seeds is not None and min(args.seeds) < 0:
        parser.error(f"--seeds must be >= 0 (numpy's generators take no negative seed), got {min(args.seeds)}")
    if args.recurrent_scale is not None and not all(math.isfinite(s) for s in args.recurrent_scale):
        parser.error("--recurrent-scale must be finite")
    if args.perturb is not None and not 0 <= args.perturb <= 0.1:
        parser.error(f"--perturb must be in [0, 0.1], got {args.perturb}")
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    return args


# ---- experiment.json -----------------------------------------------------------------------------


def write_experiment_file(out: str, settings: dict[str, Any], options: dict[str, int], data: Data,
                          command: list[str]) -> None:
    contents = {"format": EXPERIMENT_FORMAT, "version": 1, "settings": settings, "options": options,
                "text": data.text, "command": command, "cwd": os.getcwd()}
    write_text_atomically(os.path.join(out, EXPERIMENT_FILE), json.dumps(contents, indent=1) + "\n")


def read_experiment_file(out: str) -> dict[str, Any]:
    """experiment.json, checked (its settings build valid run configs); ValueError (one line) if damaged."""
    path = os.path.join(out, EXPERIMENT_FILE)
    saved = read_json_file(path, MAX_RUN_FILE_BYTES)
    saved = expect_dict(saved, EXPERIMENT_FILE, ("format", "version", "settings", "options", "text", "command"),
                        ("cwd",))
    options = expect_dict(saved["options"], f"{EXPERIMENT_FILE} options", tuple(EXPERIMENT_OPTIONS))
    for name in EXPERIMENT_OPTIONS:
        expect_int(options[name], f"options.{name}", 1 if name == "log_every" else 0, 10**8)
    if saved["format"] != EXPERIMENT_FORMAT:
        raise ValueError(f"{path} is not a char-RNN experiment file")
    expect_int(saved["version"], f"{EXPERIMENT_FILE} version", 1, 1)
    settings = expect_dict(saved["settings"], f"{EXPERIMENT_FILE} settings", SETTINGS)
    for key in ("models", "recurrent_scale", "clip", "seeds"):
        if not expect_list(settings[key], f"settings.{key}", 10_000):
            raise ValueError(f"settings.{key} is empty")
    for model in settings["models"]:
        if model not in MODELS:
            raise ValueError(f"settings.models holds {safe_text(repr(model), True)[:40]}")
    for scale in settings["recurrent_scale"]:
        expect_float(scale, "settings.recurrent_scale", -1e30, 1e30)
    expect_float(settings["perturb"], "settings.perturb", 0.0, 0.1)
    for spec in run_specs(settings):
        spec.config(settings)  # every field of every run checked (RunConfig's own checks)
    check_plain_json(saved["text"], f"{EXPERIMENT_FILE} text")
    text = expect_dict(saved["text"], f"{EXPERIMENT_FILE} text", ("path", "source", "chars", "sha256", "python"))
    if text["path"] is not None:
        expect_str(text["path"], "text.path", 4096)
    expect_str(text["sha256"], "text.sha256", 64)
    for word in expect_list(saved["command"], f"{EXPERIMENT_FILE} command", 10_000):
        expect_str(word, f"{EXPERIMENT_FILE} command", 10_000)
    return saved


def experiment_settings(args: argparse.Namespace) -> tuple[dict[str, Any], str | None, dict[str, Any] | None]:
    """(settings, text path, saved experiment.json or None) for this command: new, or the one in --out."""
    passed = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    if not args.resume:
        settings = {**DEFAULTS, **passed}
        try:
            for spec in run_specs(settings):
                spec.config(settings)
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
        return settings, args.text, None
    try:
        saved = read_experiment_file(args.out)
    except FileNotFoundError:
        raise SystemExit(f"error: --resume: {safe_text(args.out, True)} holds no experiment to resume (no "
                         f"{EXPERIMENT_FILE}); check --out, or leave out --resume to start one") from None
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: --resume: {safe_text(str(error), True)}") from None
    settings = saved["settings"]
    differences = [f"--{name.replace('_', '-')} {value} given, the experiment has {settings[name]}"
                   for name, value in passed.items() if name != "steps" and value != settings[name]]
    if differences:
        raise SystemExit(f"error: --resume: an experiment keeps its settings ({'; '.join(differences)}); drop them, "
                         "or start a new experiment in another --out")
    return {**settings, **({"steps": passed["steps"]} if "steps" in passed else {})}, \
        args.text if args.text is not None else saved["text"]["path"], saved


# ---- training every run --------------------------------------------------------------------------


def train_one(spec: RunSpec, folder: str, config: RunConfig, data: Data, options: Options, stop: Any) -> dict[str, Any]:
    """Train (or continue) one run of the experiment, measured in float64; its record for metrics.json."""
    if stop.is_set():
        return {"name": spec.name, **vars(spec), "status": "not started", "log": []}
    probes = Float64Probes()
    with RunLock(folder):
        run = train_run(folder, config, data, options, stop, probes.evaluate, probes.measure)
    dynamics = run.record["dynamics"]
    check_dynamics(dynamics)  # they may come from a checkpoint
    record = {"name": spec.name, **vars(spec), "status": run.record["status"], "step": run.step, "seconds": run.seconds,
              "trained": run.trained,
              "log": run.record["log"], "best": run.record["best"], "full_validation": run.record["full_validation"],
              **{key: {when: value[key] for when, value in dynamics.items()}
                 for key in ("grad_ratio", "tanh_input", "hidden_sample", "invariance")}}
    if options.sample_length and run.record["status"] == "finished" and spec.seed == 0 and not spec.perturbed:
        record["sample"] = run.sample(options.sample_length)
    return record


_worker_stop: Any = None  # in a worker process: the Event the main process sets on Ctrl-C


def _start_worker(lock: Any, stop: Any) -> None:
    """Runs first in each worker process: share tqdm's lock, and leave Ctrl-C to the main process."""
    global _worker_stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tqdm.set_lock(lock)
    _worker_stop = stop


def _train_in_worker(task: tuple) -> dict[str, Any]:
    spec, folder, config, data, options = task
    return train_one(spec, folder, config, data, options, _worker_stop)


@contextlib.contextmanager
def ctrl_c_sets(stop: Any) -> Iterator[None]:
    """The first Ctrl-C sets ``stop`` (every run saves and returns), the second raises SecondInterrupt."""
    def request_stop(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise SecondInterrupt
        stop.set()
        print("\nCtrl-C: finishing the current update of every run, then saving (Ctrl-C again stops at once, "
              "without saving)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_all(tasks: list[tuple], jobs: int) -> list[dict[str, Any]]:
    """Train every run, in ``jobs`` worker processes when there is more than one."""
    if jobs == 1:
        stop = threading.Event()
        with ctrl_c_sets(stop):
            return [train_one(*task, stop) for task in tasks]
    # "spawn" starts clean interpreters (no forked threads). The workers ignore Ctrl-C; the main
    # process hears it and tells them through the Event, or ends them at the second one.
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    pool = context.Pool(jobs, initializer=_start_worker, initargs=(context.RLock(), stop), maxtasksperchild=None)
    try:
        pending = [pool.apply_async(_train_in_worker, ((*task[:4], replace(task[4], position=i % jobs)),))
                   for i, task in enumerate(tasks)]
        with ctrl_c_sets(stop):
            records = [result.get() for result in pending]
        pool.close()
        return records
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
        signal.signal(signal.SIGINT, previous)


# ---- the report ----------------------------------------------------------------------------------


def group_key(run: dict[str, Any]) -> tuple:
    return (-1.0 if run["clip"] is None else run["clip"], run["scale"], MODELS.index(run["model"]))


def summary_table(runs: list[dict[str, Any]]) -> str:
    """One row per (clipping, scale, model): each number's mean over the seeds (and twins), their range."""
    header = (f"{'clip':<8} {'S':>4} {'model':<10} {'runs':>4}  {'full val loss':<22} {'saturation':<22} "
              f"{'norm drift':<22} {'median |grad|':<24} {'r(32) at init':<26} {'steps to 1.8':<20} {'ms/step':>7}")
    lines = [header, "-" * len(header)]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in sorted(runs, key=group_key):
        groups.setdefault(group_key(run), []).append(run)
    for group in groups.values():
        first = group[0]
        final = [run["log"][-1] for run in group]
        grads = [float(np.median([row["grad_norm"] for row in run["log"] if row["grad_norm"] is not None]))
                 if len(run["log"]) > 1 else math.nan for run in group]
        ratio = [run["grad_ratio"]["init"][max(run["grad_ratio"]["init"], key=int)] for run in group]
        below = [first_step_below(run, LOSS_TARGET)[0] for run in group]
        ms = np.mean([1000 * run["seconds"] / max(run["step"], 1) for run in group])
        lines.append(
            f"{clip_label(first['clip']):<8} {first['scale']:>4g} {first['model']:<10} {len(group):>4}  "
            f"{spread([(run['full_validation'] or {}).get('nats') for run in group]):<22} "
            f"{spread([row['saturation'] for row in final]):<22} {spread([row['norm_drift'] for row in final]):<22} "
            f"{spread(grads, '.3g'):<24} {spread(ratio, '.2e'):<26} {spread(below, '.0f'):<20} {ms:>7.1f}")
    lines.append(f"mean (min-max) over seeds and twins. full val loss: nats/char over the whole validation text at the "
                 f"end; saturation, drift: the last probe; |grad|: median over logged steps, before clipping; "
                 f"r(32): gradient ratio at distance 32; steps to {LOSS_TARGET}: first logged step with smoothed "
                 "train loss below it")
    return "\n".join(lines)


def results_markdown(runs: list[dict[str, Any]], claims: dict[str, list[dict[str, Any]]] | None,
                     settings: dict[str, Any], wall: float) -> str:
    """The tables the README quotes: the numbers by scale and model, and the claims with how many seeds they held in."""
    clips = sorted({run["clip"] for run in runs}, key=lambda c: -1.0 if c is None else c)
    labels = " / ".join(clip_label(clip) for clip in clips)
    lines = [f"Seeds {settings['seeds']}" + (f", each with a twin perturbed by {settings['perturb']:g}"
                                             if settings["perturb"] else "")
             + f"; {settings['steps']} updates per run; {len(runs)} runs, {wall / 60:.0f} min wall-clock. "
             "Each cell: mean (min-max) over seeds and twins, one value per clipping setting.", "",
             f"| S | model | full val loss (nats/char), {labels} | saturated units (\\|h\\| > 0.99), {labels} | "
             f"norm drift, {labels} | "
             f"median grad norm, {labels} | r(32) at init | steps to train loss {LOSS_TARGET}, {labels} |",
             "|---|---|---|---|---|---|---|---|"]
    for scale in sorted({run["scale"] for run in runs}):
        for model in MODELS:
            cells = {key: [] for key in ("val", "sat", "drift", "grad", "steps")}
            ratio = "n/a"
            for clip in clips:
                group = [r for r in runs if r["scale"] == scale and r["model"] == model and r["clip"] == clip]
                if not group:
                    continue
                cells["val"].append(spread([(r["full_validation"] or {}).get("nats") for r in group]))
                cells["sat"].append(spread([100 * r["log"][-1]["saturation"] for r in group], ".0f") + " %")
                cells["drift"].append(spread([r["log"][-1]["norm_drift"] for r in group]))
                cells["grad"].append(spread([float(np.median([row["grad_norm"] for row in r["log"][1:]]))
                                             for r in group], ".2g"))
                cells["steps"].append(spread([first_step_below(r, LOSS_TARGET)[0] for r in group], ".0f"))
                ratio = spread([r["grad_ratio"]["init"][max(r["grad_ratio"]["init"], key=int)] for r in group], ".2g")
            if cells["val"]:
                lines.append(f"| {scale:g} | {model} | " + " | ".join(" / ".join(cells[key]) for key in
                                                                     ("val", "sat", "drift", "grad"))
                             + f" | {ratio} | {' / '.join(cells['steps'])} |")
    if claims:
        lines += ["", "| pre-registered claim | " + " | ".join(claims) + " |", "|---|" + "---|" * len(claims)]
        for i, claim in enumerate(next(iter(claims.values())), start=1):
            verdicts = []
            for label in claims:
                item = claims[label][i - 1]
                verdicts.append(("**holds**" if item["holds"] else "fails" if item["holds"] is False else "n/a")
                                + (f" ({held_text(item)})" if item["held"] else ""))
            lines.append(f"| {i}. {claim['statement']} | ".replace("|h|", "\\|h\\|") + " | ".join(verdicts) + " |")
    return "\n".join(lines) + "\n"


MACHINE_NOTE = (
    "These numbers come from one seed on this machine. At S = 1 another machine should agree to about the third "
    "decimal. At S = 5 the runs are chaotic: another CPU or BLAS library rounds differently, a difference in the "
    "last bit grows until the run takes another path, and the numbers can differ by as much as they differ between "
    "seeds. In the README's measurement (5 seeds, each with a twin whose initial weights were perturbed by 1e-6), "
    "the perturbation moved no final loss at S = 1 by more than 0.0005 nats/char, but moved the clipped vanilla "
    "RNN's at S = 5 by up to 0.64 (seed 0: 1.845, its twin 2.481). To measure it here: --seeds 0 1 2 3 4 "
    "--perturb 1e-6.")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if not args.resume:
        if os.path.exists(os.path.join(args.out, EXPERIMENT_FILE)):
            command = shlex.join([*command_prefix(__file__), "--out", args.out, "--resume"])
            raise SystemExit(f"error: --out {safe_text(args.out, True)} already holds an experiment; to continue it: "
                             f"{safe_text(command, True)}  (to start afresh, choose another --out)")
        check_new_folder(args.out)
    elif not os.path.isdir(args.out):
        raise SystemExit(f"error: --resume: {safe_text(args.out, True)} holds no experiment to resume (no such "
                         "folder); check --out, or leave out --resume to start one")
    with locked_folder(args.out):  # an experiment that could not start leaves no empty folder behind
        return locked_main(args, argv)


def prepare(args: argparse.Namespace, argv: list[str]) -> tuple[dict[str, Any], dict[str, int], Data, list[RunSpec]]:
    settings, text_path, saved = experiment_settings(args)
    passed = {name: getattr(args, name) for name in EXPERIMENT_OPTIONS if hasattr(args, name)}
    options = (EXPERIMENT_OPTIONS if saved is None else saved["options"]) | passed
    run_options = {"log_every": options["log_every"], "checkpoint_every": options["checkpoint_every"],
                   "sample_every": 0, "sample_length": options["sample_length"]}
    base = RunSpec(settings["models"][0], 1.0, None, 0).config(settings)
    data = prepare_data(text_path, base)
    if saved is not None and data.text["sha256"] != saved["text"]["sha256"]:
        raise SystemExit(f"error: --resume: {safe_text(str(text_path), True)} is not the experiment's text (sha256 "
                         f"{saved['text']['sha256'][:16]}...); pass --text FILE with it")
    if saved is None:
        check_new_folder(args.out)  # again, now that the folder is locked
        write_experiment_file(args.out, settings, options, data, ["python", "examples/char_rnn_experiment.py", *argv])
    elif settings["steps"] != saved["settings"]["steps"] or options != saved["options"]:
        write_experiment_file(args.out, settings, options, data, saved["command"])
    specs = run_specs(settings)
    for spec in specs:
        folder = os.path.join(args.out, spec.name)
        config = spec.config(settings)
        if os.path.exists(os.path.join(folder, RUN_FILE)):
            recorded = read_run_file(folder)["config"]
            if replace(recorded, steps=config.steps) != config:
                raise SystemExit(f"error: --resume: {safe_text(folder, True)}/{RUN_FILE} does not match the "
                                 "experiment's settings")
            if recorded.steps != config.steps:
                write_run_file(folder, config, data, read_run_file(folder)["command"], run_options)
        else:
            os.makedirs(folder, exist_ok=True)
            write_run_file(folder, config, data, ["python", "examples/char_rnn_experiment.py", *argv], run_options)
    return settings, options, data, specs


def locked_main(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    try:
        settings, options, data, specs = prepare(args, argv)
    except (TextFileError, ModelFileError, ValueError, OSError) as error:
        raise SystemExit(f"error: {safe_text(str(error), True)}") from None
    text = data.text
    print(f"text: {safe_text(text['source'], True)}\n  {text['chars']:,} chars, vocabulary {len(data.vocab)}, sha256 "
          f"{text['sha256'][:16]}..., Python {text['python']}; train {len(data.train):,} / validation "
          f"{len(data.val):,} chars")
    print(f"  probe: {data.probe[0].shape[1]} x {data.probe[0].shape[0]} validation chars; baselines on it: "
          f"uniform {math.log(len(data.vocab)):.2f}, unigram {data.baselines['unigram']:.2f}, "
          f"bigram {data.baselines['bigram']:.2f} nats/char")
    jobs = min(args.jobs, len(specs))
    print(f"{len(specs)} runs of {settings['steps']} updates, {jobs} at a time"
          + (", continuing" if args.resume else "") + "\n")
    options = Options(log_every=options["log_every"], checkpoint_every=options["checkpoint_every"], sample_every=0,
                      sample_length=options["sample_length"], threads=args.threads, plot=False)
    tasks = [(spec, os.path.join(args.out, spec.name), spec.config(settings), data, replace(options, name=spec.name))
             for spec in specs]
    started = time.perf_counter()
    try:
        records = run_all(tasks, jobs)
    except SecondInterrupt:
        print("\nsecond Ctrl-C: stopped without saving; each run continues from its last checkpoint.npz",
              file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT_STATUS) from None
    except (ModelFileError, ValueError, RunInUseError) as error:
        raise SystemExit(f"error: {safe_text(str(error), True)}") from None
    wall = time.perf_counter() - started
    samples = {r["name"]: r.pop("sample", None) for r in records}
    runs = [r for r in records if r["log"]]
    interrupted = any(r["status"] != "finished" for r in records)
    both_models = {run["model"] for run in runs} == set(MODELS)
    claims = claims_by_clip(runs) if both_models and not interrupted else None
    metrics = {"settings": settings, "text": data.text, "baselines": data.baselines, "wall_seconds": wall,
               "probe": {"sequences": data.probe[0].shape[1], "length": data.probe[0].shape[0]},
               "interrupted": interrupted, "runs": records, "claims": claims}
    write_text_atomically(os.path.join(args.out, "metrics.json"),
                          json.dumps(json_safe(metrics), indent=1, allow_nan=False) + "\n")
    if not interrupted:
        write_text_atomically(os.path.join(args.out, "results.md"), results_markdown(runs, claims, settings, wall))
    plots = make_plots(runs, data.baselines, len(data.vocab), settings["hidden"], args.out) if runs else []
    print(f"\nwrote {os.path.join(args.out, 'metrics.json')}" + "".join(f", {path}" for path in plots))
    if interrupted:
        done = ", ".join(f"{r['name']} {r['status']}" + (f" at step {r['step']}" if r.get("step") is not None else "")
                         for r in records if r["status"] != "finished")
        print(f"\nInterrupted ({done}); each run's checkpoint.npz holds the step named.")
        print(f"To continue:\n  {shlex.join([*command_prefix(__file__), '--out', args.out, '--resume'])}")
        raise SystemExit(INTERRUPTED_EXIT_STATUS)
    for name, text in samples.items():
        if text:
            print(f"--- sample from {name} (temperature 0.8) ---\n{safe_text(text)}\n")
    trained = sum(bool(r.get("trained")) for r in records)
    print(f"trained {trained} of {len(records)} runs in {wall:.0f} s wall-clock" + (
        "" if trained else " (every run had finished before)") + "\n")
    print(summary_table(runs))
    if claims is not None:
        print("\nClaims, checked against these runs for each clipping setting:")
        print(format_claims(claims))
    if len(settings["seeds"]) == 1 and not settings["perturb"]:
        print("\n" + MACHINE_NOTE)
    example = os.path.join(args.out, specs[-1].name, "model.npz")
    sample = command_prefix(os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample.py"))
    print(f"\nEach run's folder holds model.npz and best.npz. Sample from one:\n"
          f"  {shlex.join([*sample, example, '--prompt', 'The '])}")
    return metrics


if __name__ == "__main__":
    main()
