"""Write text with a char-RNN model file, or score a text with it; no training text or flags needed.

    python examples/sample.py runs/mine/model.npz --prompt "The " --length 300
    python examples/sample.py runs/mine/model.npz --prompt-file start.txt --stop-at "\\n\\n"
    python examples/sample.py MODEL.npz --temperature 0.5 --top-k 10 --num-samples 3 --seed 1
    python examples/sample.py MODEL.npz --show surprisal                 # colour each character in the terminal
    python examples/sample.py VANILLA.npz LAYERNORM.npz --html both.html --show saturation
    python examples/sample.py MODEL.npz --score essay.txt                # bits per character on a text
    python examples/sample.py MODEL.npz --score essay.txt --html essay.html  # and where it was surprised

Writing: the model reads the prompt, then writes one character at a time, each drawn from its
predicted distribution (sharpened by --temperature below 1, cut to the --top-k most likely) and fed
back in; the text appears as it is written. How the seed is used: sample i (from 0) draws from a
random generator seeded by --seed + i together with the SHA-256 of the prompt, so the same seed and
prompt give the same text, and two prompts get independent draws even with the same seed.

Scoring: the model reads the file in order from its zero state and is scored on every character
after the first: the mean of -log2 p(char | all the text before it) is its bits per character
(nats per character is the same times ln 2, the training loss's unit; perplexity is 2^bits).

--show colours each written character by the model's surprisal at it (-log2 p, in bits, under its
own unsharpened distribution) or by the fraction of its hidden units that were saturated (|h| >
0.99) when it chose it; --html writes the same colouring (or, with --score, the text's surprisal)
to a web page, several models side by side. Any model.npz, best.npz or checkpoint.npz works.
"""

from __future__ import annotations

import argparse
import html
import math
import os
import re
import stat
import sys
from typing import Any

from char_rnn_data import CharVocab, TextFileError
from char_rnn_files import safe_text, write_text_atomically
from char_rnn_model import (
    SATURATION_THRESHOLD,
    CharRNN,
    Generation,
    ModelFileError,
    TextScorer,
    check_prompt,
    describe_char,
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
MAX_PROMPT_FILE_BYTES = 10_000_000
SCORE_PIECE = 1 << 20  # characters read from a --score file at a time
HTML_SCORE_LIMIT = 50_000  # characters of a scored text shown in its --html page


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="MODEL", help="model file(s) (.npz) written by char_rnn.py")
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", help="text the model reads before it writes (default: a newline, if the model "
                                         "knows it, else its first character)")
    prompt.add_argument("--prompt-file", metavar="FILE", help="read the prompt from this UTF-8 file")
    prompt.add_argument("--score", metavar="FILE", help="instead of writing, score this UTF-8 text: bits per "
                                                        "character, and with --html the surprisal of each")
    parser.add_argument("--length", type=int, default=500, help="at most this many characters after the prompt "
                                                                "(default: 500)")
    parser.add_argument("--stop-at", metavar="STRING", help="stop once the written text ends with STRING (it is "
                                                            "printed); backslash escapes such as \\n work")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="below 1: safer, more repetitive; above 1: wilder; 0: always the most likely character "
                             "(default: 0.8)")
    parser.add_argument("--top-k", type=int, help="draw only from the K most likely characters (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="sample i draws from a generator seeded by SEED + i and "
                                                            "the prompt, >= 0 (default: 0)")
    parser.add_argument("--num-samples", type=int, default=1, help="samples per model (default: 1)")
    parser.add_argument("--show", choices=("surprisal", "saturation"),
                        help="colour each written character by this measurement, in the terminal and in --html "
                             "(default: plain text; the page shows surprisal)")
    parser.add_argument("--html", metavar="FILE", help="also write the samples (or the scored text), coloured, to "
                                                       "this web page")
    args = parser.parse_args(argv)
    if args.length < 0 or args.num_samples < 1:
        parser.error("--length must be >= 0 and --num-samples >= 1")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.temperature < 0 or not math.isfinite(args.temperature):
        parser.error(f"--temperature must be >= 0, got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        parser.error(f"--top-k must be at least 1, got {args.top_k}")
    if args.stop_at is not None:
        escapes = {"n": "\n", "t": "\t", "\\": "\\"}
        args.stop_at = re.sub(r"\\(.)", lambda match: escapes.get(match.group(1), match.group(0)), args.stop_at)
        if not args.stop_at:
            parser.error("--stop-at is empty")
    return args


# ---- colours -------------------------------------------------------------------------------------


def colour_bin(value: float, measure: str) -> int:
    """0 (lowest) to 5 (highest): which colour a measurement gets."""
    return sum(value >= edge for edge in BIN_EDGES[measure])


def ansi_char(char: str, value: float, measure: str) -> str:
    """One written character on a background coloured by ``measure`` (a line break stays plain)."""
    if char == "\n":
        return char
    shown = safe_text(char)  # a control character in the vocabulary is shown escaped, never sent
    return f"\x1b[30;48;5;{ANSI_BACKGROUNDS[colour_bin(value, measure)]}m{shown}\x1b[0m"


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


def html_spans(prompt: str, text: str, surprisal: list[float], saturation: list[float] | None, measure: str) -> str:
    """The prompt plain (bold), then each character coloured, with a tooltip giving its numbers."""
    spans = [f'<span class="prompt">{html.escape(safe_text(prompt))}</span>'] if prompt else []
    for i, (char, bits) in enumerate(zip(text, surprisal)):
        value = bits if measure == "surprisal" or saturation is None else saturation[i]
        tip = f"surprisal {bits:.2f} bits" + ("" if saturation is None else f", saturation {100 * saturation[i]:.1f} %")
        spans.append(f'<span style="background:{html_colour(value, measure)}" title="{tip}">'
                     f'{html.escape(safe_text(char))}</span>')
    return "".join(spans)


def html_page(columns: list[tuple[str, list[str]]], measure: str, note: str = "") -> str:
    """A standalone page: one column per model, each holding blocks of coloured text."""
    body = "".join(f'<div class="column"><h2>{html.escape(title)}</h2>'
                   + "".join(f"<pre>{block}</pre>" for block in blocks) + "</div>" for title, blocks in columns)
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>char-RNN</title><style>"
        "body{font-family:sans-serif;margin:1em} .columns{display:flex;gap:1.5em} .column{flex:1;min-width:0}"
        "pre{white-space:pre-wrap;font-size:14px;line-height:1.4} .prompt{font-weight:bold}"
        "h2{font-size:15px}</style></head><body>\n"
        f"<p>Each character's background: its {measure} ({UNITS[measure]}), white (low) to red "
        f"(high, bins at {', '.join(f'{edge:g}' for edge in BIN_EDGES[measure])}); hover for the numbers. "
        f"{html.escape(note)}</p>\n<div class=\"columns\">{body}</div>\n</body></html>\n")


# ---- model files ---------------------------------------------------------------------------------


def describe(path: str, info: dict[str, Any]) -> str:
    """One line about a model file: which weights, how many updates, where from, how good (safe to print)."""
    def number(key: str, kind: type) -> Any:
        value = info.get(key)
        return value if isinstance(value, kind) and not isinstance(value, bool) else None

    kind, run, step, updates = number("kind", str), number("run", str), number("step", int), number("updates", int)
    parts = [f"{kind or '?'} weights" + (f" of run {run[:100]!r}" if run else "")
             + (f" after {step:,} updates" if step is not None else "")]
    source = info.get("init_from")
    if isinstance(source, dict) and isinstance(source.get("path"), str):
        parts[0] += (f" ({updates:,} in all; it started from {source['path'][:300]})" if updates is not None
                     else f" (it started from {source['path'][:300]})")
    probe = number("probe_loss", float)
    if probe is not None and math.isfinite(probe):
        parts.append(f"probe loss {probe:.3f} nats/char ({probe / math.log(2):.3f} bits/char)")
    full = info.get("full_validation")
    if isinstance(full, dict) and isinstance(full.get("nats"), float) and math.isfinite(full["nats"]):
        parts.append(f"full validation {full['nats']:.3f} nats/char ({full['nats'] / math.log(2):.3f} bits/char)")
    return safe_text(f"{path}: " + ", ".join(parts), one_line=True)


def load(path: str) -> tuple[CharRNN, CharVocab, str]:
    """The model in a file, its vocabulary, and a line describing it; SystemExit (one line) if unusable."""
    try:
        model_file = load_model_file(path)
    except ModelFileError as error:
        raise SystemExit(f"error: {error}") from None
    broken = nonfinite_weights(model_file.weights)
    if broken:
        raise SystemExit(f"error: {safe_text(path, True)}: the weights hold NaN or infinity ({len(broken)} of "
                         f"{len(model_file.weights)} arrays, such as {broken[0]}): they come from a run that "
                         "diverged; sample from its best.npz instead")
    return model_from_file(model_file), model_file.vocab, describe(path, model_file.info)


def read_utf8(path: str, what: str, limit: int | None = None) -> str:
    """A whole UTF-8 file (at most ``limit`` bytes), or SystemExit naming the problem."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise SystemExit(f"error: {what} {safe_text(path, True)} is not a regular file")
        with open(path, "rb") as file:
            content = file.read(-1 if limit is None else limit + 1)
    except OSError as error:
        raise SystemExit(f"error: {what} {safe_text(path, True)}: {error.strerror}") from None
    if limit is not None and len(content) > limit:
        raise SystemExit(f"error: {what} {safe_text(path, True)} is larger than {limit:,} bytes")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SystemExit(f"error: {what} {safe_text(path, True)} is not UTF-8 text (byte "
                         f"0x{content[error.start]:02x} at offset {error.start:,})") from None


def check_html_target(path: str) -> None:
    """Refuse, before any work, an --html path whose folder is missing or not writable (one line)."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise SystemExit(f"error: --html {safe_text(path, True)} is a folder; give a file name such as page.html")
    if not os.path.isdir(folder):
        raise SystemExit(f"error: --html {safe_text(path, True)}: the folder {safe_text(folder, True)} does not exist")
    if not os.access(folder, os.W_OK):
        raise SystemExit(f"error: --html {safe_text(path, True)}: no permission to write in {safe_text(folder, True)}")


def write_html(path: str, page: str) -> None:
    try:
        write_text_atomically(path, page)
    except OSError as error:
        raise SystemExit(f"error: --html {safe_text(path, True)}: {error.strerror}") from None
    print(f"wrote {safe_text(path, True)}", file=sys.stderr)


# ---- the two modes -------------------------------------------------------------------------------


def pieces_of(path: str) -> Any:
    """The UTF-8 text of ``path``, SCORE_PIECE characters at a time (a file of any size in bounded memory)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise TextFileError(f"--score {safe_text(path, True)} is not a regular file")
        with open(path, encoding="utf-8") as file:
            while piece := file.read(SCORE_PIECE):
                yield piece
    except UnicodeDecodeError as error:
        raise TextFileError(f"{safe_text(path, True)} is not UTF-8 text (byte 0x{error.object[error.start]:02x} near "
                            f"character {error.start:,} of a piece)") from None
    except OSError as error:
        raise TextFileError(f"--score {safe_text(path, True)}: {error.strerror}") from None


def score(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """--score FILE: every model's bits per character on the text; with --html, the surprisal page."""
    keep = HTML_SCORE_LIMIT if args.html else 0
    results, columns, shown = [], [], ""
    try:
        for path in args.models:
            model, vocab, title = load(path)
            unknown: set[str] = set()
            for piece in pieces_of(args.score):
                unknown |= set(vocab.unknown(piece))
            if unknown:
                chars = sorted(unknown)
                raise SystemExit(f"error: --score {safe_text(args.score, True)} has {len(chars)} character(s) outside "
                                 f"the vocabulary of {safe_text(path, True)} ({len(vocab)} characters): "
                                 + ", ".join(describe_char(c) for c in chars[:5]) + (" ..." if len(chars) > 5 else ""))
            scorer, first = TextScorer(model, keep=keep), None
            for piece in pieces_of(args.score):
                if first is None:
                    first, shown = piece[:1], piece[: keep + 1] if keep else ""
                scorer.feed(vocab.encode(piece))
            result = scorer.result()
            if result.chars == 0:
                raise SystemExit(f"error: --score {safe_text(args.score, True)} has fewer than 2 characters: "
                                 "nothing to score")
            print(safe_text(f"{path}: {args.score}: {result.bits_per_char:.4f} bits/char ({result.nats_per_char:.4f} "
                            f"nats/char, perplexity {result.perplexity:.3f}) over {result.chars:,} characters "
                            "(every one after the first, each predicted from all before it)", one_line=True))
            results.append((path, result))
            columns.append((title, [html_spans(shown[:1], shown[1:], result.surprisal, None, "surprisal")]))
    except TextFileError as error:
        raise SystemExit(f"error: {error}") from None
    if args.html:
        note = f"The first {HTML_SCORE_LIMIT:,} characters of {args.score}; the first one has no prediction."
        write_html(args.html, html_page(columns, "surprisal", note))
    return results


def write(args: argparse.Namespace) -> list[tuple[str, list[Generation]]]:
    """Sample from every model, streaming each character to the terminal as it is drawn."""
    prompt = read_utf8(args.prompt_file, "--prompt-file", MAX_PROMPT_FILE_BYTES) if args.prompt_file else args.prompt
    sections = []
    for path in args.models:
        model, vocab, title = load(path)
        text = prompt if prompt is not None else ("\n" if "\n" in vocab.chars else vocab.chars[0])
        if len(args.models) > 1:
            print(f"=== {title}")
        generations = []
        for i in range(args.num_samples):
            if args.num_samples > 1:
                print(f"--- sample {i + 1} of {args.num_samples} (seed {args.seed + i}) ---")

            def stream(char: str, bits: float, saturated: float) -> None:
                value = bits if args.show == "surprisal" else saturated
                sys.stdout.write(ansi_char(char, value, args.show) if args.show else safe_text(char))
                sys.stdout.flush()

            try:
                check_prompt(vocab, text)  # a character the model never saw, an empty prompt: before any output
                sys.stdout.write(safe_text(text))
                generation = generate(model, vocab, text, args.length, args.temperature, args.top_k, args.seed + i,
                                      stop_at=args.stop_at, on_char=stream)
            except ValueError as error:  # also outputs that are not numbers (NaN)
                sys.stdout.flush()
                raise SystemExit(f"error: {safe_text(path, True)}: {error}") from None
            print()
            generations.append(generation)
        sections.append((title, generations))
    if args.show:
        print(legend(args.show))
    if args.html:
        measure = args.show or "surprisal"
        columns = [(title, [html_spans(g.prompt, g.text, g.surprisal, g.saturation, measure) for g in generations])
                   for title, generations in sections]
        write_html(args.html, html_page(columns, measure, "The prompt is in bold."))
    return sections


def main(argv: list[str] | None = None) -> list[tuple[str, Any]]:
    args = parse_args(argv)
    if args.html:
        check_html_target(args.html)
    return score(args) if args.score else write(args)


if __name__ == "__main__":
    main()
