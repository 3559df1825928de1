"""The char-RNN example's pictures, drawn from the run records of metrics.json (matplotlib, files only).

    comparison.png     per clipping setting (columns): probe loss against steps and seconds,
                       saturation, norm drift, gradient norm and RMS of a_t against steps
    hidden_states.png  |h_t| of one validation sequence as a picture (units x steps), at init and
                       after training, and the distribution of what tanh receives (a_t, or LN(a_t))
    dynamics.png       r(k) at init and after training
    invariance.png     every weight and bias that makes a_t multiplied by c: how much the hidden
                       states and the probe loss change, at init and after training
    headline.png       the README's picture: probe loss with and without clipping, and the
                       hidden states of the largest scale's runs

Colour is the model (vanilla red, layernorm blue), line style the recurrent init scale S; several
seeds are drawn as their mean with the range shaded. docs/layernorm-rnn.md explains each picture.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import defaultdict
from typing import Any

import numpy as np
from char_rnn_claims import clip_label
from char_rnn_model import SATURATION_THRESHOLD

MODELS = ("vanilla", "layernorm")
COLORS = {"vanilla": "#d62728", "layernorm": "#1f77b4"}
LINE_STYLES = ("-", "--", ":", "-.")
SATURATED_INPUT = math.atanh(SATURATION_THRESHOLD)  # |tanh input| above this: |h| > 0.99
SATURATED_COLOUR = "#ff7f0e"  # orange: a saturated unit in the |h| pictures


def _clips(runs: list[dict[str, Any]]) -> list[float | None]:
    """The clipping settings of the runs, no clipping first."""
    return sorted({run["clip"] for run in runs}, key=lambda c: -1.0 if c is None else c)


def _groups(runs: list[dict[str, Any]]) -> dict[tuple[str, float], list[dict[str, Any]]]:
    """Runs grouped by (model, scale), in a stable order; each group holds one run per seed."""
    groups = defaultdict(list)
    for run in sorted(runs, key=lambda r: (r["scale"], MODELS.index(r["model"]), r["seed"])):
        groups[(run["model"], run["scale"])].append(run)
    return groups


def _style(scale: float, runs: list[dict[str, Any]]) -> str:
    scales = sorted({run["scale"] for run in runs})
    return LINE_STYLES[scales.index(scale) % len(LINE_STYLES)]


def _label(model: str, scale: float) -> str:
    return f"{model}, S={scale:g}"


def _plot_band(ax: Any, x: Any, ys: list[list[float]], model: str, style: str, label: str,
               geometric: bool = False) -> None:
    """The mean over seeds as a line, the seeds' range as a shaded band (when there are several).

    ``geometric`` averages in log space (for r(k), which spans many decades). Seeds with fewer
    points (an interrupted run) are padded with NaN, which matplotlib leaves out.
    """
    length = max(len(y) for y in ys)
    values = np.full((len(ys), length), np.nan)
    for i, y in enumerate(ys):
        values[i, : len(y)] = [np.nan if v is None else v for v in y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice": a step no seed reached
        if geometric:
            values = np.log(values)
        mean, low, high = np.nanmean(values, axis=0), np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    if geometric:
        mean, low, high = np.exp(mean), np.exp(low), np.exp(high)
    x = np.asarray(x, dtype=float)[:length]
    ax.plot(x, mean, color=COLORS[model], linestyle=style, label=label, linewidth=1.6)
    if len(ys) > 1:
        ax.fill_between(x, low, high, color=COLORS[model], alpha=0.2, linewidth=0)


def plot_log_metric(ax: Any, runs: list[dict[str, Any]], key: str, x_key: str = "step") -> None:
    """One logged metric against steps (or seconds) for every (model, scale) of ``runs``."""
    for (model, scale), group in _groups(runs).items():
        longest = max(group, key=lambda run: len(run["log"]))
        x = [e[x_key] for e in longest["log"]]
        if x_key == "seconds":  # each seed has its own clock: use their mean where all have one
            x = [np.mean([run["log"][i][x_key] for run in group if i < len(run["log"])]) for i in range(len(x))]
        _plot_band(ax, x, [[e[key] for e in run["log"]] for run in group], model, _style(scale, runs),
                   _label(model, scale))


def plot_loss(ax: Any, runs: list[dict[str, Any]], baselines: dict[str, float], vocab_size: int,
              x_key: str = "step") -> None:
    plot_log_metric(ax, runs, "probe_loss", x_key)
    for (name, value), style in zip(baselines.items(), (":", "-.")):
        ax.axhline(value, color="grey", linestyle=style, linewidth=1, label=f"{name} baseline {value:.2f}")
    finite = [e["probe_loss"] for run in runs for e in run["log"] if e["probe_loss"] is not None]
    ax.set_ylim(max(0.0, min(finite, default=1.0) - 0.15), math.log(vocab_size) + 0.6)
    ax.set_ylabel("probe loss (nats/char)")


def plot_grad_ratio(ax: Any, runs: list[dict[str, Any]], when: str) -> None:
    """r(k) against k, on a log scale."""
    for (model, scale), group in _groups(runs).items():
        group = [run for run in group if when in run["grad_ratio"]]
        if not group:
            continue
        ks = sorted(group[0]["grad_ratio"][when], key=int)
        ys = [[run["grad_ratio"][when][k] for k in ks] for run in group]
        _plot_band(ax, [int(k) for k in ks], ys, model, _style(scale, runs), _label(model, scale), geometric=True)
    ax.set_yscale("log")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xlabel("distance k (steps back from the last step)")
    ax.set_ylabel(r"$r(k) = \Vert\partial\ell_T/\partial h_{T-k}\Vert \;/\; \Vert\partial\ell_T/\partial h_T\Vert$")


def plot_tanh_input(ax: Any, runs: list[dict[str, Any]], scale: float, whens: tuple[str, ...]) -> None:
    """Histogram (log density) of what tanh receives, vanilla and layernorm, at one scale."""
    for model in MODELS:
        for when, style in zip(whens, ("--", "-")):
            group = [run for run in runs if run["model"] == model and run["scale"] == scale
                     and when in run.get("tanh_input", {})]
            if not group:
                continue
            edges = np.array(group[0]["tanh_input"][when]["edges"])
            density = np.mean([run["tanh_input"][when]["density"] for run in group], axis=0)
            label = f"{model}, {'at init' if when == 'init' else 'trained'}"
            ax.stairs(density, edges, color=COLORS[model], linestyle=style, label=label, linewidth=1.4)
    for sign in (1, -1):
        ax.axvline(sign * SATURATED_INPUT, color="black", linestyle=":", linewidth=0.9,
                   label=f"|input| = {SATURATED_INPUT:.2f}: |h| = {SATURATION_THRESHOLD}" if sign > 0 else None)
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 2)
    ax.set_xlabel("input to tanh: a_t (vanilla), LN(a_t) (layernorm)")
    ax.set_ylabel("density (all steps, sequences, units)")


def plot_hidden_heatmap(ax: Any, run: dict[str, Any] | None, when: str) -> Any:
    """|h_t| of one probe sequence as an image, time across and units down: white is 0, darker is
    larger, orange is saturated (|h| > 0.99). Returns the image (for a colour bar), or None."""
    if run is None or when not in run.get("hidden_sample", {}):
        ax.set_axis_off()
        return None
    import matplotlib

    magnitudes = np.abs(np.array(run["hidden_sample"][when])).T  # (units, steps)
    colours = matplotlib.colormaps["Greys"].with_extremes(over=SATURATED_COLOUR)  # above the top: saturated
    image = ax.imshow(magnitudes, cmap=colours, vmin=0, vmax=SATURATION_THRESHOLD, aspect="auto",
                      interpolation="nearest")
    saturated = float(np.mean(magnitudes > SATURATION_THRESHOLD))
    ax.set_title(f"{run['model']}, S={run['scale']:g}, {'init' if when == 'init' else 'trained'}: "
                 f"{100 * saturated:.0f} % saturated", fontsize=9)
    ax.set_xlabel("time step t")
    ax.set_ylabel("hidden unit")
    return image


def plot_invariance(ax: Any, runs: list[dict[str, Any]], when: str, key: str) -> None:
    """``key`` ("probe_loss" or "hidden_change") against c, the factor every weight and bias that makes
    a_t was multiplied by."""
    for (model, scale), group in _groups(runs).items():
        group = [run for run in group if when in run.get("invariance", {})]
        if not group:
            continue
        curve = group[0]["invariance"][when]
        keep = [i for i, c in enumerate(curve["factors"]) if key == "probe_loss" or c != 1.0]  # c = 1 changes nothing
        _plot_band(ax, [curve["factors"][i] for i in keep],
                   [[run["invariance"][when][key][i] for i in keep] for run in group], model,
                   _style(scale, runs), _label(model, scale), geometric=key == "hidden_change")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("c: W_ih, W_hh, b_ih, b_hh multiplied by c")
    if key == "hidden_change":
        ax.set_yscale("log")
        ax.set_ylabel(r"mean $|h_t(c) - h_t(1)|$")
    else:
        ax.set_ylabel("probe loss (nats/char)")


def _title_when(when: str, clip: float | None) -> str:
    return "at init" if when == "init" else f"after training, {clip_label(clip)}"


def make_plots(runs: list[dict[str, Any]], baselines: dict[str, float], vocab_size: int, hidden_size: int,
               out: str) -> list[str]:
    """Draw every picture of ``runs`` into ``out``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    clips = _clips(runs)
    by_clip = {clip: [run for run in runs if run["clip"] == clip] for clip in clips}
    scales = sorted({run["scale"] for run in runs})
    paths = []

    # comparison.png: one row per metric, one column per clipping setting
    rows = (("probe_loss", "Probe loss", "step"), ("probe_loss", "Probe loss vs training time", "seconds"),
            ("saturation", "Saturation: fraction of |h| > 0.99", "step"),
            ("norm_drift", r"Norm drift: mean over t of $(\Vert h_t\Vert - \Vert h_{t-1}\Vert)^2$", "step"),
            ("grad_norm", "Global gradient norm (before clipping)", "step"),
            ("summed_input_rms", r"RMS of the summed inputs $a_t$", "step"))
    fig, axes = plt.subplots(len(rows), len(clips), figsize=(6.5 * len(clips), 3.3 * len(rows)),
                             constrained_layout=True, squeeze=False)
    for column, clip in enumerate(clips):
        for row, (key, title, x_key) in enumerate(rows):
            ax = axes[row, column]
            if key == "probe_loss":
                plot_loss(ax, by_clip[clip], baselines, vocab_size, x_key)
            else:
                plot_log_metric(ax, by_clip[clip], key, x_key)
                if key != "saturation":
                    ax.set_yscale("log")
            ax.set_title(f"{title} ({clip_label(clip)})")
            ax.set_xlabel("training seconds (evaluation excluded)" if x_key == "seconds" else "training step")
            ax.grid(alpha=0.3)
        axes[0, column].legend(fontsize=8)
    _share_y_by_row(axes)
    paths.append(_save(fig, os.path.join(out, "comparison.png"), plt))

    # hidden_states.png: per scale, |h_t| at init and after training (no clipping), then the histograms
    moments = [("init", clips[0])] + [("final", clip) for clip in clips]
    fig, axes = plt.subplots(len(scales), 5, figsize=(17, 3.4 * len(scales)), constrained_layout=True,
                             squeeze=False, width_ratios=(1, 1, 1, 1, 1.4))
    image = None
    for row, scale in enumerate(scales):
        for column, (model, when) in enumerate((m, w) for w in ("init", "final") for m in MODELS):
            run = next((r for r in by_clip[clips[0]] if r["model"] == model and r["scale"] == scale), None)
            image = plot_hidden_heatmap(axes[row, column], run, when) or image
        plot_tanh_input(axes[row, -1], by_clip[clips[0]], scale, ("init", "final"))
        axes[row, -1].set_title(f"What tanh receives, S={scale:g}", fontsize=9)
        axes[row, -1].grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="upper right")
    if image is not None:
        fig.colorbar(image, ax=axes[:, 3], label="|h| (orange: above 0.99, saturated)", shrink=0.8, extend="max")
    fig.suptitle(f"|h_t| of one validation sequence (orange: saturated), and what tanh receives over the whole "
                 f"probe; trained = after {max(r['log'][-1]['step'] for r in runs)} steps, {clip_label(clips[0])}")
    paths.append(_save(fig, os.path.join(out, "hidden_states.png"), plt))

    # dynamics.png: r(k) at init and after training
    fig, axes = plt.subplots(1, len(moments), figsize=(5.5 * len(moments), 4.4), constrained_layout=True,
                             squeeze=False)
    for column, (when, clip) in enumerate(moments):
        plot_grad_ratio(axes[0, column], by_clip[clip], when)
        axes[0, column].set_title(f"Gradient vs distance, {_title_when(when, clip)}")
        axes[0, column].grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    _share_y_by_row(axes)
    paths.append(_save(fig, os.path.join(out, "dynamics.png"), plt))

    # invariance.png: every weight and bias that makes a_t times c; hidden states, then loss
    fig, axes = plt.subplots(2, len(moments), figsize=(5.5 * len(moments), 8.5), constrained_layout=True,
                             squeeze=False)
    for column, (when, clip) in enumerate(moments):
        for row, key in enumerate(("hidden_change", "probe_loss")):
            plot_invariance(axes[row, column], by_clip[clip], when, key)
            what = "hidden states" if key == "hidden_change" else "probe loss"
            axes[row, column].set_title(f"Summed input times c: {what}, {_title_when(when, clip)}", fontsize=10)
            axes[row, column].grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    _share_y_by_row(axes)
    paths.append(_save(fig, os.path.join(out, "invariance.png"), plt))

    # headline.png: loss with and without clipping, and the hidden states of the largest scale
    biggest = scales[-1]
    fig, axes = plt.subplots(1, len(clips) + 2, figsize=(4.6 * (len(clips) + 2), 4.4), constrained_layout=True)
    for ax, clip in zip(axes, clips):
        plot_loss(ax, by_clip[clip], baselines, vocab_size)
        ax.set_title(f"Probe loss, {clip_label(clip)}")
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    _share_y(axes[: len(clips)])
    for ax, model in zip(axes[len(clips):], MODELS):
        run = next((r for r in by_clip[clips[0]] if r["model"] == model and r["scale"] == biggest), None)
        plot_hidden_heatmap(ax, run, "final")
        if run is not None:
            ax.set_title(ax.get_title() + f"\n({clip_label(clips[0])})", fontsize=9)
    fig.suptitle(f"Vanilla vs layer-normalized tanh RNN (H={hidden_size}), next-character prediction; S = recurrent "
                 "init scale (W_hh multiplied by S); right: |h_t| of one validation sequence (orange: saturated)")
    paths.append(_save(fig, os.path.join(out, "headline.png"), plt))
    return paths


def _share_y(axes: Any) -> None:
    """One y-range for these panels, so they compare at a glance."""
    low, high = zip(*(ax.get_ylim() for ax in axes))
    for ax in axes:
        ax.set_ylim(min(low), max(high))


def _share_y_by_row(axes: Any) -> None:
    for row in axes:
        _share_y(row)


def _save(fig: Any, path: str, plt: Any) -> str:
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
