"""Train a character-level RNN on your own text: start, stop, continue, extend, then sample from it.

    python examples/char_rnn.py --text input.txt --out runs/mine          # start; Ctrl-C stops and saves
    python examples/char_rnn.py --out runs/mine --resume                  # continue: the folder knows the rest
    python examples/char_rnn.py --out runs/mine --resume --steps 3000     # train a finished run for longer
    python examples/char_rnn.py --text more.txt --init-from runs/mine/model.npz --out runs/tuned
    python examples/sample.py runs/mine/model.npz --prompt "The "         # write text
    python examples/sample.py runs/mine/model.npz --score other.txt       # bits per character on a text

The model: Embedding(V, 64) -> a layer-normalized tanh RNN (Ba, Kiros & Hinton 2016) of 128 units
-> Linear(128, V), trained with Adam on random 64-character windows of the text, its gradient norm
clipped to 1; the last 10 % of the text is held out for validation. Everything is a flag.

A run lives in its --out folder, and nothing there is ever overwritten by another run: a folder
that holds a run is refused without --resume (the error prints the command that continues it),
and a lock file keeps two processes out of one folder. What the folder holds and how training
goes: examples/char_rnn_train.py. The vanilla vs layer-normalized comparison behind `make demo`
is examples/char_rnn_experiment.py.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict, replace
from typing import Any

from char_rnn_data import CharVocab, TextFileError, load_text, text_sha256
from char_rnn_files import locked_folder, safe_text
from char_rnn_model import LIMITS, ModelFileError, load_model_file
from char_rnn_train import (
    BEST,
    CHECKPOINT,
    FINAL,
    LOG_FILE,
    MAX_STEPS,
    MODELS,
    OPTION_NAMES,
    PICTURE,
    RUN_FILE,
    SCHEDULES,
    Data,
    Options,
    Run,
    RunConfig,
    command_prefix,
    load_init_from,
    prepare_data,
    read_run_file,
    train_run,
    write_run_file,
)

DEFAULT = RunConfig()
# How a run logs, checkpoints and samples; run.json keeps them, and a resumed run uses them unless told otherwise.
TOOL_OPTIONS = {"log_every": 25, "checkpoint_every": 250, "sample_every": 500, "sample_length": 200}
DEFAULT_OUT = os.path.join("runs", "char_rnn")
INTERRUPTED_EXIT_STATUS = 130  # what a shell reports for a program stopped by Ctrl-C (128 + SIGINT)
# The flags that shape a run's numbers, by RunConfig field. --resume compares the ones you pass with the run's.
RUN_FLAGS = ("model", "embed", "hidden", "layers", "dropout", "steps", "seq_len", "batch", "lr", "schedule", "clip",
             "seed", "val_fraction", "fused", "init_from")
ARCHITECTURE = ("embed", "hidden", "layers", "dropout")  # --init-from takes these from its file


def parse_clip(text: str) -> float | None:
    """'none' (or 'off', '0') -> no clipping; a positive number -> clip the global norm to it."""
    if text.lower() in ("none", "off", "0"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'none', got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number or 'none', got {text!r}")
    return value


def setting(group: Any, flag: str, **kwargs: Any) -> None:
    """An option that shapes the run: left out of the parsed arguments unless it is given."""
    group.add_argument(flag, default=argparse.SUPPRESS, **kwargs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line. Flags that shape the run are absent from the result unless passed (their defaults
    are RunConfig's), so --resume knows which were passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_argument_group("the run")
    what.add_argument("--text", metavar="FILE",
                      help="UTF-8 text to train on (default: CPython's help texts, pydoc_data.topics)")
    what.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                      help=f"the run's folder: new or empty to start a run (default: {DEFAULT_OUT})")
    what.add_argument("--resume", action="store_true",
                      help="continue the run in --out: it keeps its text and flags; pass --steps N to train it to N "
                           "updates in all (longer than planned, or past its end)")
    what.add_argument("--init-from", metavar="FILE",
                      help="start from the weights of a model file (a new run: fresh optimizer, step 0); the text "
                           "must use its vocabulary")
    model = parser.add_argument_group("model (with --init-from: from its file)")
    setting(model, "--model", choices=MODELS, help=f"the RNN (default: {DEFAULT.model})")
    setting(model, "--embed", type=int, help=f"embedding size (default: {DEFAULT.embed})")
    setting(model, "--hidden", type=int, help=f"hidden units H (default: {DEFAULT.hidden})")
    setting(model, "--layers", type=int, help=f"stacked RNN layers (default: {DEFAULT.layers})")
    setting(model, "--dropout", type=float, help=f"dropout between stacked layers (default: {DEFAULT.dropout})")
    training = parser.add_argument_group("training")
    setting(training, "--steps", type=int, help=f"updates in all (default: {DEFAULT.steps})")
    setting(training, "--seq-len", type=int, help=f"characters per training window T (default: {DEFAULT.seq_len})")
    setting(training, "--batch", type=int, help=f"windows per batch (default: {DEFAULT.batch})")
    setting(training, "--lr", type=float, help=f"Adam's learning rate (default: {DEFAULT.lr})")
    setting(training, "--schedule", choices=SCHEDULES,
                          help="the learning rate over the run: constant; cosine down to lr/10 at the last update; "
                               f"step: halved at 1/2 and again at 3/4 of --steps (default: {DEFAULT.schedule})")
    setting(training, "--clip", type=parse_clip, metavar="NORM",
                          help="clip the gradient's global norm to NORM; 'none': no clipping "
                               f"(default: {DEFAULT.clip})")
    setting(training, "--seed", type=int, help="fixes the initial weights and the order of the batches, "
                                                   f">= 0 (default: {DEFAULT.seed})")
    setting(training, "--val-fraction", type=float, metavar="F",
                          help=f"the last F of the text is held out for validation (default: {DEFAULT.val_fraction})")
    setting(training, "--no-fused", action="store_const", const=False, dest="fused",
                          help="train through the primitive-op graph (tl.fused(False)) instead of the fused layer "
                               "ops: the same numbers to float32 rounding, slower")
    output = parser.add_argument_group("output (the run keeps these too; free to change when resuming)")
    setting(output, "--log-every", type=int, metavar="N",
            help="evaluate on the validation probe and write a row to log.jsonl every N updates "
                 f"(default: {TOOL_OPTIONS['log_every']})")
    setting(output, "--checkpoint-every", type=int, metavar="N",
            help="write checkpoint.npz every N updates; 0: only on Ctrl-C and at the end "
                 f"(default: {TOOL_OPTIONS['checkpoint_every']})")
    setting(output, "--sample-every", type=int, metavar="N",
            help=f"print a sample every N updates; 0: never (default: {TOOL_OPTIONS['sample_every']})")
    setting(output, "--sample-length", type=int, metavar="CHARS",
            help="characters per sample, and in the one printed at the end; 0: no samples "
                 f"(default: {TOOL_OPTIONS['sample_length']})")
    output.add_argument("--threads", type=int, default=1,
                        help="BLAS threads for the matrix products (tl.set_num_threads); one is fastest for products "
                             "as small as these, 0 leaves numpy's own count (default: 1)")
    args = parser.parse_args(argv)
    for name in ("steps", "seq_len", "batch", "log_every", "embed", "hidden", "layers"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    for name in ("checkpoint_every", "sample_every", "sample_length", "threads", "seed"):
        if getattr(args, name, 0) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    for name, limit in (*((key, LIMITS[key]) for key in ("embed", "hidden", "layers")), ("steps", MAX_STEPS)):
        if getattr(args, name, 0) > limit:
            parser.error(f"--{name.replace('_', '-')} must be at most {limit:,}, got {getattr(args, name):,}")
    if not 0 <= getattr(args, "dropout", 0) < 1:
        parser.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if not (getattr(args, "lr", 1) > 0 and math.isfinite(getattr(args, "lr", 1))):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    if not 0 < getattr(args, "val_fraction", 0.1) <= 0.5:
        parser.error(f"--val-fraction must be in (0, 0.5], got {args.val_fraction}")
    if args.init_from is not None:
        args.init_from = os.path.abspath(args.init_from)
    return args


def passed_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The run-shaping flags given on this command line, by RunConfig field."""
    return {name: getattr(args, name) for name in RUN_FLAGS if hasattr(args, name) and
            not (name == "init_from" and args.init_from is None)}


def flag(name: str) -> str:
    return "--no-fused" if name == "fused" else f"--{name.replace('_', '-')}"


def new_run(args: argparse.Namespace) -> tuple[RunConfig, Data]:
    """The config and data of a run started by this command (a one-line SystemExit if it cannot start)."""
    passed = passed_flags(args)
    init_from = None
    if args.init_from:
        init_from = load_init_from(args.init_from)
        conflicts = [f"{flag(name)} {passed[name]} (the file has {getattr(init_from.config, name)})"
                     for name in ARCHITECTURE if name in passed and passed[name] != getattr(init_from.config, name)]
        if passed.get("model", init_from.config.kind) != init_from.config.kind:
            conflicts.append(f"--model {passed['model']} (the file holds a {init_from.config.kind} model)")
        if conflicts:
            raise SystemExit(f"error: --init-from {safe_text(args.init_from, True)}: the model comes from the file; "
                             f"drop " + "; ".join(conflicts))
        passed |= {name: getattr(init_from.config, name) for name in ARCHITECTURE} | {"model": init_from.config.kind}
    try:
        config = RunConfig(**passed)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    return config, prepare_data(args.text, config, init_from.vocab if init_from else None)


def resumed_run(args: argparse.Namespace) -> tuple[RunConfig, Data, dict[str, Any]]:
    """The config and data of the run in --out, with --steps (if passed) as its new length.

    Only the flags passed are compared with the run's; the text is the one the run recorded, found
    by its path or given again with --text, and identified by its SHA-256 either way.
    """
    try:
        saved = read_run_file(args.out)
    except FileNotFoundError:
        if os.path.exists(os.path.join(args.out, "experiment.json")):
            command = shlex.join([*command_prefix(experiment_script()), "--out", args.out, "--resume"])
            raise SystemExit(f"error: --resume: {safe_text(args.out, True)} holds an experiment, not a run; continue "
                             f"it with: {safe_text(command, True)}") from None
        raise SystemExit(f"error: --resume: {safe_text(args.out, True)} holds no run to resume (no {RUN_FILE}); check "
                         "--out, or leave out --resume to start a new run") from None
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: --resume: {safe_text(str(error), True)}") from None
    config: RunConfig = saved["config"]
    passed = passed_flags(args)
    differences = [f"{flag(name)} {value} given, the run has {safe_text(repr(getattr(config, name)), True)}"
                   for name, value in passed.items() if name != "steps" and getattr(config, name) != value]
    if differences:
        raise SystemExit(f"error: --resume: a run keeps the settings it started with ({'; '.join(differences)}); drop "
                         f"{'them' if len(differences) > 1 else 'it'}, or start a new run from its weights with "
                         f"--init-from {safe_text(os.path.join(args.out, FINAL), True)}")
    if "steps" in passed:
        config = replace(config, steps=passed["steps"])
    text = saved["text"]
    path = args.text if args.text is not None else text["path"]
    wanted = f"the run's text ({safe_text(text['source'], True)}, {text['chars']:,} characters, sha256 " \
             f"{text['sha256'][:16]}...)"
    try:
        content, _ = load_text(path)
    except TextFileError as error:
        raise SystemExit(f"error: --resume: {error}; pass --text FILE with {wanted}") from None
    if text_sha256(content) != text["sha256"]:
        where = f"--text {safe_text(args.text, True)}" if args.text is not None else safe_text(str(path), True)
        raise SystemExit(f"error: --resume: {where} is not {wanted}: its sha256 is {text_sha256(content)[:16]}...; "
                         "pass --text FILE with the run's text")
    vocab = run_vocabulary(args.out, config)
    return config, prepare_data(path, config, vocab), saved


def run_vocabulary(folder: str, config: RunConfig) -> CharVocab | None:
    """The vocabulary of a run that started from a model file (None: the text's own, rebuilt from the text)."""
    if config.init_from is None:
        return None
    checkpoint = os.path.join(folder, CHECKPOINT)
    return load_model_file(checkpoint if os.path.exists(checkpoint) else config.init_from).vocab


def experiment_script() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "char_rnn_experiment.py")


def check_new_folder(out: str) -> None:
    """--out for a new run: a new or empty folder (a run already there is never replaced)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise SystemExit(f"error: --out {safe_text(out, True)} is a file, not a folder; give a folder for the run")
    if not os.path.isdir(out):
        return
    if os.path.exists(os.path.join(out, RUN_FILE)):
        try:
            read_run_file(out)
        except (OSError, ValueError):
            raise SystemExit(f"error: --out {safe_text(out, True)} holds a {RUN_FILE} this version cannot continue "
                             "(an older layout, or a damaged file); choose another --out") from None
        raise SystemExit(f"error: --out {safe_text(out, True)} already holds a run; to continue it: "
                         f"{safe_text(shlex.join([*command_prefix(__file__), '--out', out, '--resume']), True)}  "
                         "(to start afresh, choose another --out)")
    others = [name for name in os.listdir(out) if name != ".lock"]
    if others:
        raise SystemExit(f"error: --out {safe_text(out, True)} is not empty ({len(others)} entries, such as "
                         f"{safe_text(others[0], True)}) and holds no run; choose a new or empty folder")


# ---- Ctrl-C --------------------------------------------------------------------------------------


class SecondInterrupt(BaseException):
    """Raised by the second Ctrl-C: stop at once, without saving."""


@contextlib.contextmanager
def ctrl_c_sets(stop: Any) -> Iterator[None]:
    """Inside this block the first Ctrl-C sets ``stop`` (the run saves and returns), the second raises
    SecondInterrupt (stop now)."""
    def request_stop(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise SecondInterrupt
        stop.set()
        print("\nCtrl-C: finishing the current update, then saving (Ctrl-C again stops at once, without saving)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# ---- the report ----------------------------------------------------------------------------------


def loss_line(label: str, nats: float | None, where: str) -> str:
    if nats is None or not math.isfinite(nats):
        return f"  {label:<27} {'not finite':>10}   ({where})"
    return (f"  {label:<27} {nats:>6.3f} nats/char  {nats / math.log(2):>6.3f} bits/char  perplexity "
            f"{math.exp(min(nats, 700)):>7.2f}   ({where})")


def report(run: Run, out: str) -> None:
    """What the run did and where its files are; the probe number is the one the progress bar ended on."""
    record, last = run.record, run.record["log"][-1]
    print(f"\n{run.name}: {run.step:,} updates in {run.seconds:.1f} s of training "
          f"({1000 * run.seconds / max(run.step, 1):.1f} ms per update)")
    probe = run.data.probe[0].shape
    print(loss_line(f"probe loss at step {last['step']}", last["probe_loss"], f"{probe[1]} x {probe[0]} validation "
                    "characters, evaluated every --log-every updates"))
    full = record["full_validation"]
    if full is not None:
        print(loss_line("full validation", full["nats"], f"all {full['chars']:,} validation characters after the "
                        "first, read in order"))
    best = record["best"]
    if best is None:
        print("  the probe loss was never finite: no best.npz (the run diverged; try a lower --lr, or --clip 1)")
    else:
        print(loss_line(f"best probe loss (step {best['step']})", best["probe_loss"], os.path.join(out, BEST)))
    if record["init_from"] is not None:
        print(f"  started from {safe_text(record['init_from']['path'], True)}")
    print(f"files: {os.path.join(out, FINAL)}, {os.path.join(out, BEST)}, {os.path.join(out, LOG_FILE)}, "
          f"{os.path.join(out, PICTURE)}")
    sample = command_prefix(os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample.py"))
    prompt = ["--prompt", "The "] if not run.data.vocab.unknown("The ") else []
    print(f"sample from it:\n  {shlex.join([*sample, os.path.join(out, FINAL), *prompt])}")
    longer = shlex.join([*command_prefix(__file__), "--out", out, "--resume", "--steps", str(2 * run.step)])
    print(f"train it for longer:\n  {longer}")


def print_start(args: argparse.Namespace, config: RunConfig, data: Data, resuming: bool) -> None:
    text = data.text
    print(f"text: {safe_text(text['source'], True)}: {text['chars']:,} characters, {len(data.vocab)} distinct, sha256 "
          f"{text['sha256'][:16]}...; {len(data.train):,} for training, {len(data.val):,} for validation")
    print(f"  for scale: guessing uniformly costs {math.log(len(data.vocab)):.2f} nats/char; the unigram and bigram "
          f"baselines on the probe: {data.baselines['unigram']:.2f} and {data.baselines['bigram']:.2f}")
    shown = {key: value for key, value in asdict(config).items()
             if key not in ("recurrent_scale", "perturbation") and value is not None}
    print(("continuing " if resuming else "") + f"{args.out}: " + ", ".join(f"{key} {value}" for key, value in
                                                                           shown.items()))


def main(argv: list[str] | None = None) -> Run:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if not args.resume:
        check_new_folder(args.out)
    elif not os.path.isdir(args.out):
        raise SystemExit(f"error: --resume: {safe_text(args.out, True)} holds no run to resume (no such folder); check "
                         "--out, or leave out --resume to start a new run")
    with locked_folder(args.out):  # a run that could not start leaves no empty folder behind
        return locked_main(args, argv)


def locked_main(args: argparse.Namespace, argv: list[str]) -> Run:
    passed_options = {name: getattr(args, name) for name in OPTION_NAMES if hasattr(args, name)}
    try:
        if args.resume:
            config, data, saved = resumed_run(args)
            options = saved["options"] | passed_options
            if config.steps != saved["config"].steps or options != saved["options"]:
                write_run_file(args.out, config, data, saved["command"], options)  # its new length, or options
        else:
            check_new_folder(args.out)  # again, now that the folder is ours: another run may have started here
            config, data = new_run(args)
            options = TOOL_OPTIONS | passed_options
            write_run_file(args.out, config, data, ["python", "examples/char_rnn.py", *argv], options)
    except (TextFileError, ModelFileError) as error:
        raise SystemExit(f"error: {error}") from None
    print_start(args, config, data, args.resume)
    options = Options(**options, threads=args.threads)
    stop, progress = threading.Event(), {}
    try:
        with ctrl_c_sets(stop):
            run = train_run(args.out, config, data, options, stop, progress=progress)
    except SecondInterrupt:
        run = progress.get("run")
        if run is None or run.saved_step is None:
            saved = "no checkpoint was saved yet"
        else:
            saved = f"{os.path.join(args.out, CHECKPOINT)} holds step {run.saved_step}" + (
                "" if run.saved_step == run.step else f" ({run.step - run.saved_step} updates before it stopped)")
        print(f"\nsecond Ctrl-C: stopped at once; {saved}", file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT_STATUS) from None
    except ModelFileError as error:
        raise SystemExit(f"error: --resume: {error}") from None
    continuing = shlex.join([*command_prefix(__file__), "--out", args.out, "--resume"])
    if run.record["status"] == "interrupted":
        print(f"\nInterrupted: saved {os.path.join(args.out, CHECKPOINT)} at step {run.saved_step} of "
              f"{config.steps}.\nTo continue:\n  {continuing}")
        raise SystemExit(INTERRUPTED_EXIT_STATUS)
    if not run.trained:
        print(f"\n{run.name} finished at step {run.step} of {config.steps}: nothing to do. To train it for longer:\n"
              f"  {continuing} --steps {2 * run.step}")
        return run
    if options.sample_length:
        print(f"\n--- sample at step {run.step} (temperature 0.8) ---\n{safe_text(run.sample(options.sample_length))}")
    report(run, args.out)
    return run


if __name__ == "__main__":
    main()
