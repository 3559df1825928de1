"""The five claims the char-RNN comparison checks, written down before the runs from a numpy
calibration of the same models (docs/layernorm-rnn.md, section 5), and their report.

A run record is the dict examples/char_rnn.py writes to metrics.json: "model", "scale", "clip",
"seed", "log" (one entry per logged step) and "grad_ratio" ({"init": r(k), "final": r(k)}).
Claims are checked separately for each clipping setting, then shown side by side: a claim that
holds without clipping but not with it is an effect of clipping's absence, not of layer
normalization alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

LOSS_TARGET = 1.8  # claim 5: steps until the smoothed train loss falls below this (nats/char)
VAL_GAP = 0.5  # claim 1: nats/char
GRAD_RATIO_FACTOR = 100  # claim 4
VERDICTS = {True: "HOLDS", False: "FAILS", None: "NOT EVALUATED"}


def clip_label(clip: float | None) -> str:
    """How a clipping setting is named in reports: "no clipping" or "clip 1"."""
    return "no clipping" if clip is None else f"clip {clip:g}"


def _pairs(runs: list[dict[str, Any]], scale: float) -> list[tuple[int, dict, dict]]:
    """(seed, vanilla run, layernorm run) for every seed that has both models at this scale."""
    found = {(r["model"], r["scale"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    return [(s, found[("vanilla", scale, s)], found[("layernorm", scale, s)])
            for s in seeds if ("vanilla", scale, s) in found and ("layernorm", scale, s) in found]


def first_step_below(run: dict[str, Any], target: float) -> tuple[float, float]:
    """(step, seconds) of the first logged smoothed train loss below ``target``; (inf, inf) if never."""
    for entry in run["log"]:
        if entry["train_loss"] < target:
            return entry["step"], entry["seconds"]
    return math.inf, math.inf


def _every_step(vanilla: dict, layernorm: dict, key: str, skip_first: bool) -> tuple[int, int]:
    """(logged steps where layernorm's ``key`` is below vanilla's, logged steps compared)."""
    pairs = list(zip(vanilla["log"], layernorm["log"]))[1 if skip_first else 0:]
    return sum(ln[key] < v[key] for v, ln in pairs), len(pairs)


def evaluate_claims(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The five pre-registered claims for runs of one clipping setting, each {"id", "statement", "holds",
    "evidence"}.

    A claim holds when it holds for every seed; ``holds`` is None (not evaluated) when the runs it
    needs are not in this configuration.
    """
    claims = []

    def claim(claim_id: str, statement: str, scales: tuple[float, ...], check: Any) -> None:
        pairs = {scale: _pairs(runs, scale) for scale in scales}
        if not all(pairs.values()):
            needs = " and ".join(f"{s:g}" for s in scales)
            claims.append({"id": claim_id, "statement": statement, "holds": None,
                           "evidence": f"not evaluated: needs vanilla and layernorm runs at scale {needs}"})
            return
        results = [check(scale, seed, v, ln) for scale in scales for seed, v, ln in pairs[scale]]
        claims.append({"id": claim_id, "statement": statement, "holds": all(ok for ok, _ in results),
                       "evidence": "; ".join(text for _, text in results)})

    def val_gap(scale: float, seed: int, v: dict, ln: dict) -> tuple[bool, str]:
        gap = v["log"][-1]["val_loss"] - ln["log"][-1]["val_loss"]
        return gap >= VAL_GAP, (f"seed {seed}: vanilla {v['log'][-1]['val_loss']:.3f}, layernorm "
                                f"{ln['log'][-1]['val_loss']:.3f}, gap {gap:.3f} nats/char")

    def lower_everywhere(key: str, skip_first: bool) -> Any:
        def check(scale: float, seed: int, v: dict, ln: dict) -> tuple[bool, str]:
            below, compared = _every_step(v, ln, key, skip_first)
            first = " after step 0" if skip_first else ""
            return below == compared, (
                f"scale {scale:g} seed {seed}: lower at {below}/{compared} logged steps{first}; "
                f"mean {np.mean([e[key] for e in v['log']]):.3g} vs {np.mean([e[key] for e in ln['log']]):.3g}, "
                f"final {v['log'][-1][key]:.3g} vs {ln['log'][-1][key]:.3g}")
        return check

    def ratio_at_init(scale: float, seed: int, v: dict, ln: dict) -> tuple[bool, str]:
        k = max(v["grad_ratio"]["init"], key=int)  # "32" unless the probe is shorter
        r_v, r_ln = v["grad_ratio"]["init"][k], ln["grad_ratio"]["init"][k]
        text = f"scale {scale:g} seed {seed}: r({k}) vanilla {r_v:.3g}, layernorm {r_ln:.3g}, ratio {r_v / r_ln:.3g}"
        at_scale_1 = {s: (v1, ln1) for s, v1, ln1 in _pairs(runs, 1.0)}
        if seed in at_scale_1:  # the calibration's other half (LN larger at scale 1), reported, not claimed
            v1, ln1 = at_scale_1[seed]
            text += f" (at scale 1: {v1['grad_ratio']['init'][k]:.3g} vs {ln1['grad_ratio']['init'][k]:.3g})"
        return r_v / r_ln >= GRAD_RATIO_FACTOR, text

    def faster_to_target(scale: float, seed: int, v: dict, ln: dict) -> tuple[bool, str]:
        (step_v, sec_v), (step_ln, sec_ln) = first_step_below(v, LOSS_TARGET), first_step_below(ln, LOSS_TARGET)

        def show(step: float, sec: float) -> str:
            return "never" if math.isinf(step) else f"step {step:g} ({sec:.1f} s)"
        return step_ln < step_v, (f"seed {seed}: vanilla {show(step_v, sec_v)}, layernorm {show(step_ln, sec_ln)} "
                                  f"(first logged step with smoothed train loss < {LOSS_TARGET})")

    claim("val_loss_scale5", f"At recurrent scale 5, the layernorm RNN's final validation loss is at least "
          f"{VAL_GAP} nats/char below the vanilla RNN's", (5.0,), val_gap)
    claim("saturation_scale5", "At scale 5, layernorm's saturation (fraction of |h| > 0.99) is below vanilla's "
          "at every logged step after step 0", (5.0,), lower_everywhere("saturation", skip_first=True))
    claim("norm_drift_both_scales", "At scales 1 and 5, layernorm's norm drift is below vanilla's at every "
          "logged step", (1.0, 5.0), lower_everywhere("norm_drift", skip_first=False))
    claim("grad_ratio_init_scale5", f"At init with scale 5, r(32) is at least {GRAD_RATIO_FACTOR}x smaller for "
          "layernorm (vanilla's gradients explode backwards in time)", (5.0,), ratio_at_init)
    claim("faster_to_1.8_scale1", f"At scale 1, layernorm reaches a smoothed training loss of {LOSS_TARGET} "
          "in fewer steps", (1.0,), faster_to_target)
    return claims


def claims_by_clip(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """``evaluate_claims`` for each clipping setting in ``runs``: {clip_label: claims}, no clipping first."""
    clips = sorted({run["clip"] for run in runs}, key=lambda c: -1.0 if c is None else c)
    return {clip_label(clip): evaluate_claims([run for run in runs if run["clip"] == clip]) for clip in clips}


def survival(by_clip: dict[str, list[dict[str, Any]]]) -> str:
    """One sentence: which claims hold in every clipping setting, and which hold only in some."""
    labels = list(by_clip)
    every, some, none = [], [], []
    for i in range(1, len(by_clip[labels[0]]) + 1):
        verdicts = [by_clip[label][i - 1]["holds"] for label in labels]
        if None in verdicts:
            continue
        (every if all(verdicts) else some if any(verdicts) else none).append(i)

    def numbers(items: list[int]) -> str:
        return ", ".join(str(i) for i in items) if items else "none"

    if len(labels) == 1:
        return f"Hold: {numbers(every)}; fail: {numbers(some + none)} ({labels[0]})."
    return (f"Hold with and without clipping: {numbers(every)}. Hold in only some settings: {numbers(some)}. "
            f"Fail in every setting: {numbers(none)}.")


def format_claims(by_clip: dict[str, list[dict[str, Any]]]) -> str:
    """The claims as a side-by-side table (one verdict column per clipping setting), then the evidence."""
    labels = list(by_clip)
    width = max(len(VERDICTS[None]), *(len(label) for label in labels))
    header = f"{'claim':<6}" + "".join(f"{label:<{width + 2}}" for label in labels)
    lines = [header, "-" * len(header)]
    for i, claim in enumerate(by_clip[labels[0]], start=1):
        verdicts = "".join(f"{VERDICTS[by_clip[label][i - 1]['holds']]:<{width + 2}}" for label in labels)
        lines.append(f"{i:<6}{verdicts}{claim['statement']}")
    lines.append("")
    for i, claim in enumerate(by_clip[labels[0]], start=1):
        lines.append(f"{i}. {claim['statement']}")
        for label in labels:
            evidence = by_clip[label][i - 1]["evidence"].replace("; ", "\n" + " " * (width + 7))
            lines.append(f"     {label:<{width}}  {evidence}")
    lines.append("")
    lines.append(survival(by_clip))
    return "\n".join(lines)
