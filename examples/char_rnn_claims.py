"""The five claims the vanilla vs LN comparison checks, written down before the runs from a numpy
calibration of the same models (docs/layernorm-rnn.md, section 5), and their report.

A run record is what examples/char_rnn_experiment.py writes to metrics.json for each run: "model",
"scale", "clip", "seed", "perturbed", "log" (one row per logged step), "full_validation" and
"grad_ratio" ({"init": r(k), "final": r(k)}).

A claim is checked for each clipping setting, on every seed, and on every seed's perturbed twin
when there is one (the same run with every initial weight multiplied by 1 + 1e-6 N(0, 1): a
stand-in for another machine's rounding). It is stated as holding only if it holds in all of them;
the report says in how many it held, and a claim that holds without clipping but not with it is an
effect of clipping's absence, not of layer normalization alone.
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


def twin_label(seed: int, perturbed: bool) -> str:
    return f"seed {seed}" + (" perturbed" if perturbed else "")


def _pairs(runs: list[dict[str, Any]], scale: float) -> list[tuple[int, bool, dict, dict]]:
    """(seed, perturbed, vanilla run, layernorm run) for every seed (and twin) with both models at this scale."""
    found = {(r["model"], r["scale"], r["seed"], r["perturbed"]): r for r in runs}
    keys = sorted({(r["seed"], r["perturbed"]) for r in runs})
    return [(seed, twin, found[("vanilla", scale, seed, twin)], found[("layernorm", scale, seed, twin)])
            for seed, twin in keys
            if ("vanilla", scale, seed, twin) in found and ("layernorm", scale, seed, twin) in found]


def first_step_below(run: dict[str, Any], target: float) -> tuple[float, float]:
    """(step, seconds) of the first logged smoothed train loss below ``target``; (inf, inf) if never."""
    for row in run["log"]:
        if row["train_loss"] is not None and row["train_loss"] < target:
            return row["step"], row["seconds"]
    return math.inf, math.inf


def final_loss(run: dict[str, Any]) -> float:
    """The run's final validation loss: the full validation pass (nats/char), NaN if it diverged."""
    full = run.get("full_validation") or {}
    return math.nan if full.get("nats") is None else full["nats"]


def _below_at_every_step(vanilla: dict, layernorm: dict, key: str, skip_first: bool) -> tuple[int, int]:
    """(logged steps where layernorm's ``key`` is below vanilla's, logged steps compared)."""
    pairs = list(zip(vanilla["log"], layernorm["log"]))[1 if skip_first else 0:]
    return sum(ln[key] is not None and v[key] is not None and ln[key] < v[key] for v, ln in pairs), len(pairs)


def evaluate_claims(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The five pre-registered claims for the runs of one clipping setting, each {"id", "statement",
    "holds", "held", "evidence"}: ``held`` counts, for the seeds and for their perturbed twins, in how
    many the claim held; ``holds`` is True only if it held in all, None when the runs it needs are not
    in this configuration."""
    claims = []

    def claim(claim_id: str, statement: str, scales: tuple[float, ...], check: Any) -> None:
        pairs = {scale: _pairs(runs, scale) for scale in scales}
        if not all(pairs.values()):
            needs = " and ".join(f"{s:g}" for s in scales)
            claims.append({"id": claim_id, "statement": statement, "holds": None, "held": {},
                           "evidence": [f"not evaluated: needs vanilla and layernorm runs at scale {needs}"]})
            return
        by_twin: dict[tuple[int, bool], list[tuple[bool, str]]] = {}
        for scale in scales:
            for seed, twin, v, ln in pairs[scale]:
                by_twin.setdefault((seed, twin), []).append(check(scale, v, ln))
        held = {"seeds": [0, 0], "perturbed": [0, 0]}  # [held, of]
        evidence = []
        for (seed, twin), results in sorted(by_twin.items()):
            ok = all(result for result, _ in results)
            count = held["perturbed" if twin else "seeds"]
            count[0], count[1] = count[0] + ok, count[1] + 1
            evidence.append(f"{twin_label(seed, twin)}: " + "; ".join(text for _, text in results))
        claims.append({"id": claim_id, "statement": statement, "holds": all(h == n for h, n in held.values()),
                       "held": {key: value for key, value in held.items() if value[1]}, "evidence": evidence})

    def val_gap(scale: float, v: dict, ln: dict) -> tuple[bool, str]:
        gap = final_loss(v) - final_loss(ln)
        return gap >= VAL_GAP, (f"vanilla {final_loss(v):.3f}, layernorm {final_loss(ln):.3f}, gap {gap:.3f} "
                                "nats/char")

    def lower_everywhere(key: str, skip_first: bool) -> Any:
        def check(scale: float, v: dict, ln: dict) -> tuple[bool, str]:
            below, compared = _below_at_every_step(v, ln, key, skip_first)
            return below == compared, (f"S={scale:g}: lower at {below}/{compared} logged steps"
                                       f"{' after step 0' if skip_first else ''}; final {v['log'][-1][key]:.3g} vs "
                                       f"{ln['log'][-1][key]:.3g}")
        return check

    def ratio_at_init(scale: float, v: dict, ln: dict) -> tuple[bool, str]:
        k = max(v["grad_ratio"]["init"], key=int)  # "32" unless the probe is shorter
        r_v, r_ln = v["grad_ratio"]["init"][k], ln["grad_ratio"]["init"][k]
        text = f"r({k}) vanilla {r_v:.3g}, layernorm {r_ln:.3g}, ratio {r_v / r_ln:.3g}"
        return r_v / r_ln >= GRAD_RATIO_FACTOR, text

    def faster_to_target(scale: float, v: dict, ln: dict) -> tuple[bool, str]:
        (step_v, sec_v), (step_ln, sec_ln) = first_step_below(v, LOSS_TARGET), first_step_below(ln, LOSS_TARGET)

        def show(step: float, sec: float) -> str:
            return "never" if math.isinf(step) else f"step {step:g} ({sec:.1f} s)"
        return step_ln < step_v, f"vanilla {show(step_v, sec_v)}, layernorm {show(step_ln, sec_ln)}"

    claim("val_loss_scale5", f"At recurrent scale 5, the layernorm RNN's final validation loss (full pass) is at "
          f"least {VAL_GAP} nats/char below the vanilla RNN's", (5.0,), val_gap)
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


def held_text(claim: dict[str, Any]) -> str:
    """'5/5 seeds, 5/5 perturbed' for a claim."""
    return ", ".join(f"{held}/{of} {'seeds' if key == 'seeds' else 'perturbed'}"
                     for key, (held, of) in claim["held"].items())


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
    """The claims as a side-by-side table (one verdict column per clipping setting, with how many seeds
    each held in), then the evidence per seed."""
    labels = list(by_clip)
    cells = {label: [f"{VERDICTS[c['holds']]}" + (f" ({held_text(c)})" if c["held"] else "") for c in by_clip[label]]
             for label in labels}
    width = max(len(label) for label in labels) + 2
    width = max(width, *(len(cell) + 2 for column in cells.values() for cell in column))
    header = f"{'claim':<6}" + "".join(f"{label:<{width}}" for label in labels)
    lines = [header, "-" * len(header)]
    for i, claim in enumerate(by_clip[labels[0]], start=1):
        lines.append(f"{i:<6}" + "".join(f"{cells[label][i - 1]:<{width}}" for label in labels) + claim["statement"])
    lines.append("")
    for i, claim in enumerate(by_clip[labels[0]], start=1):
        lines.append(f"{i}. {claim['statement']}")
        for label in labels:
            for j, line in enumerate(by_clip[label][i - 1]["evidence"]):
                lines.append(f"     {label if j == 0 else '':<12} {line}")
    lines.append("")
    lines.append(survival(by_clip))
    return "\n".join(lines)


def spread(values: list[float], digits: str = ".3f") -> str:
    """'1.234 (1.200-1.300)': the mean and the range over seeds; one value alone; 'never' for inf."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "never" if values and all(v == math.inf for v in values) else "n/a"
    mean = float(np.mean(finite))
    text = format(mean, digits) if len(finite) == 1 else (
        f"{mean:{digits}} ({min(finite):{digits}}-{max(finite):{digits}})")
    missing = len(values) - len(finite)
    return text + (f", never in {missing}" if missing else "")
