"""Sample text from a char-RNN model file written by examples/char_rnn.py; no training text needed.

    python examples/sample.py runs/mine/models/layernorm_scale1_clip1_seed0.npz --prompt "The " --length 300
    python examples/sample.py MODEL.npz --temperature 0.5 --top-k 10 --num-samples 3 --seed 1
    python examples/sample.py MODEL.npz --show surprisal          # colour each character in the terminal
    python examples/sample.py VANILLA.npz LAYERNORM.npz --html both.html --show saturation

The model reads the prompt, then writes one character at a time, each drawn from its predicted
distribution (sharpened by --temperature below 1, cut to the --top-k most likely) and fed back
in. The same --seed gives the same text. --show colours each written character by the model's
surprisal at it (-log2 p, in bits, under its own unsharpened distribution) or by the fraction of
its hidden units that were saturated (|h| > 0.99) when it predicted the character; --html writes
the same colouring to a web page, several models side by side. Any file under --out/models or
--out/checkpoints works.
"""

from __future__ import annotations

import argparse
import html
import math
import os
import sys

from char_rnn_files import safe_text, write_text_atomically
from char_rnn_model import (
    SATURATION_THRESHOLD,
    Generation,
    ModelFileError,
    generate,
    load_model_file,
    model_from_file,
    nonfinite_weights,
)

# Terminal colours (256-colour backgrounds, light to dark) and the bin edges that pick one.
ANSI_BACKGROUNDS = (231, 194, 229, 223, 217, 210)  # white, green, yellow, light orange, pink, red
BIN_EDGES = {"surprisal": (1.0, 2.0, 3.0, 5.0, 8.0),  # bits
             "saturation": (0.05, 0.1, 0.2, 0.3, 0.5)}  # fraction of units
UNITS = {"surprisal": "bits", "saturation": f"of units with |h| > {SATURATION_THRESHOLD}"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help="model file(s) (.npz) to sample from")
    parser.add_argument("--prompt", default=None,
                        help="text the model reads before it writes (default: a newline, if the model knows it)")
    parser.add_argument("--length", type=int, default=500, help="characters to write after the prompt")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="below 1: safer, more repetitive; above 1: wilder; 0: always the most likely character")
    parser.add_argument("--top-k", type=int, default=None, help="draw only from the K most likely characters")
    parser.add_argument("--seed", type=int, default=0, help="sample i uses seed + i")
    parser.add_argument("--num-samples", type=int, default=1, help="samples per model")
    parser.add_argument("--show", choices=("surprisal", "saturation"), default=None,
                        help="colour each written character by this measurement (terminal, and --html)")
    parser.add_argument("--html", default=None, metavar="FILE", help="also write the samples, coloured, to FILE")
    args = parser.parse_args(argv)
    if args.length < 0 or args.num_samples < 1:
        parser.error("--length must be >= 0 and --num-samples >= 1")
    if args.temperature < 0 or not math.isfinite(args.temperature):
        parser.error(f"--temperature must be >= 0, got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        parser.error(f"--top-k must be at least 1, got {args.top_k}")
    return args


def colour_bin(value: float, measure: str) -> int:
    """0 (lowest) to 5 (highest): which colour a measurement gets."""
    return sum(value >= edge for edge in BIN_EDGES[measure])


def ansi_coloured(generation: Generation, measure: str) -> str:
    """The prompt plain, then each written character on a background coloured by ``measure``."""
    values = getattr(generation, measure)
    pieces = [safe_text(generation.prompt)]
    for char, value in zip(generation.text, values):
        if char == "\n":  # a background on a line break shows nothing; keep it plain
            pieces.append(char)
        else:
            shown = safe_text(char)  # a control character in the vocabulary is shown escaped, never sent
            pieces.append(f"\x1b[30;48;5;{ANSI_BACKGROUNDS[colour_bin(value, measure)]}m{shown}\x1b[0m")
    return "".join(pieces)


def legend(measure: str) -> str:
    edges = BIN_EDGES[measure]
    labels = [f"< {edges[0]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(edges, edges[1:])] + [f">= {edges[-1]:g}"]
    cells = "".join(f"\x1b[30;48;5;{colour}m {label} \x1b[0m" for colour, label in zip(ANSI_BACKGROUNDS, labels))
    return f"{measure} ({UNITS[measure]}): {cells}"


def html_colour(value: float, measure: str) -> str:
    """A background colour from white (lowest bin) to red (highest bin)."""
    edges = BIN_EDGES[measure]
    position = min(colour_bin(value, measure) / len(edges), 1.0)
    green_blue = round(255 - 170 * position)
    return f"rgb(255,{green_blue},{green_blue})"


def html_page(sections: list[tuple[str, list[Generation]]], measure: str) -> str:
    """A standalone page: one column per model, each written character coloured and with a tooltip."""
    columns = []
    for title, generations in sections:
        blocks = []
        for generation in generations:
            spans = [f'<span class="prompt">{html.escape(safe_text(generation.prompt))}</span>']
            for char, bits, saturated in zip(generation.text, generation.surprisal, generation.saturation):
                value = bits if measure == "surprisal" else saturated
                spans.append(f'<span style="background:{html_colour(value, measure)}" title="surprisal {bits:.2f} '
                             f'bits, saturation {100 * saturated:.1f} %">{html.escape(safe_text(char))}</span>')
            blocks.append(f"<pre>{''.join(spans)}</pre>")
        columns.append(f"<div class=\"column\"><h2>{html.escape(title)}</h2>{''.join(blocks)}</div>")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>char-RNN samples</title><style>"
        "body{font-family:sans-serif;margin:1em} .columns{display:flex;gap:1.5em} .column{flex:1;min-width:0}"
        "pre{white-space:pre-wrap;font-size:14px;line-height:1.4} .prompt{font-weight:bold}"
        "h2{font-size:15px}</style></head><body>\n"
        f"<p>Each written character's background: its {measure} ({UNITS[measure]}), white (low) to red "
        f"(high, bins at {', '.join(f'{edge:g}' for edge in BIN_EDGES[measure])}); hover for both "
        "measurements. The prompt is in bold.</p>\n"
        f"<div class=\"columns\">{''.join(columns)}</div>\n</body></html>\n")


def describe(path: str, info: dict) -> str:
    """One line about a model file: its run, which weights, how many steps, how good (made safe to print)."""
    step, val_loss = info.get("step"), info.get("val_loss")
    steps = f"{step}" if isinstance(step, int) and not isinstance(step, bool) else "?"
    quality = f", validation loss {val_loss:.3f} nats/char" if isinstance(val_loss, float) else ""
    run, kind = (str(info.get(key, "?"))[:200] for key in ("run", "kind"))
    return safe_text(f"{path}: {run}, {kind} weights after {steps} steps{quality}", one_line=True)


def check_html_target(path: str) -> None:
    """Refuse, before any sampling, an --html path whose folder is missing or not writable (one line)."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise SystemExit(f"error: --html {safe_text(path, True)} is a folder; give a file name such as page.html")
    if not os.path.isdir(folder):
        raise SystemExit(f"error: --html {safe_text(path, True)}: the folder {safe_text(folder, True)} does not exist")
    if not os.access(folder, os.W_OK):
        raise SystemExit(f"error: --html {safe_text(path, True)}: no permission to write in {safe_text(folder, True)}")


def main(argv: list[str] | None = None) -> list[tuple[str, list[Generation]]]:
    args = parse_args(argv)
    if args.html:
        check_html_target(args.html)
    sections = []
    for path in args.checkpoints:
        try:
            model_file = load_model_file(path)
        except ModelFileError as error:
            raise SystemExit(f"error: {error}") from None
        broken = nonfinite_weights(model_file.weights)
        if broken:
            raise SystemExit(f"error: {safe_text(path, True)}: the weights hold NaN or infinity ({len(broken)} of "
                             f"{len(model_file.weights)} arrays, such as {broken[0]}): they come from a run that "
                             "diverged; sample from its .best.npz instead")
        model = model_from_file(model_file)
        vocab = model_file.vocab
        prompt = args.prompt if args.prompt is not None else ("\n" if "\n" in vocab.chars else vocab.chars[0])
        title = describe(path, model_file.info)
        if len(args.checkpoints) > 1:
            print(f"=== {title}")
        generations = []
        for i in range(args.num_samples):
            try:
                generation = generate(model, vocab, prompt, args.length, args.temperature, args.top_k, args.seed + i)
            except ValueError as error:  # a prompt character the model never saw, an empty prompt
                raise SystemExit(f"error: {safe_text(path, True)}: {error}") from None
            generations.append(generation)
            if args.num_samples > 1:
                print(f"--- sample {i + 1} of {args.num_samples} (seed {args.seed + i}) ---")
            print(ansi_coloured(generation, args.show) if args.show else safe_text(generation.prompt + generation.text))
        sections.append((title, generations))
    if args.show:
        print(legend(args.show))
    if args.html:
        try:
            write_text_atomically(args.html, html_page(sections, args.show or "surprisal"))
        except OSError as error:
            raise SystemExit(f"error: --html {safe_text(args.html, True)}: {error.strerror}") from None
        print(f"wrote {safe_text(args.html, True)}", file=sys.stderr)
    return sections


if __name__ == "__main__":
    main()
