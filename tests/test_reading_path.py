"""The README's reading path ("the idea in ~250 lines") points at the definitions it names.

Each range in README.md between the ``reading-path`` markers is written as

    [`tensor.py` 27-61](tinygrad_ln/tensor.py#L27-L61) | `Tensor` to `Tensor._make`

and must start on the first line of the first definition named (its decorator, if any) and end
on the last line of the last one, so that an edit to the code that moves a definition fails here
instead of leaving the README pointing at the wrong lines. The total of the numbered rows must be
what the README says, and stay at most 250.

After a deliberate change to tensor.py, autograd.py or ops.py, run

    .venv/bin/python tests/test_reading_path.py

to rewrite the ranges and the total in place (review with ``git diff``).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- reading-path:start", "<!-- reading-path:end -->"

# [`tensor.py` 27-61](tinygrad_ln/tensor.py#L27-L61) | `Tensor` to `Tensor._make`   (the "to" part optional)
RANGE = re.compile(
    r"\[`(?P<name>[\w.]+\.py)` (?P<start>\d+)-(?P<end>\d+)\]"
    r"\((?P<path>[\w/]+\.py)#L(?P<link_start>\d+)-L(?P<link_end>\d+)\)"
    r"(?P<between> \| | )`(?P<first>[\w.]+)`(?: to `(?P<last>[\w.]+)`)?"
)
TOTAL = re.compile(r"\*\*(\d[\d,]*) lines\*\*")


@dataclass
class Range:
    """One range of the reading path, as written in the README."""

    path: str
    start: int
    end: int
    first: str
    last: str
    counted: bool  # a numbered row of the table (counted in the total), not a "then" mention
    text: str  # the matched text, to rewrite it


def reading_path_text() -> str:
    text = README.read_text(encoding="utf-8")
    start, end = text.find(START), text.find(END)
    assert 0 <= start < end, f"README.md must contain the markers {START} ... {END}"
    return text[start:end]


def written_ranges(text: str) -> list[Range]:
    ranges = []
    for match in RANGE.finditer(text):
        assert match["path"].endswith("/" + match["name"]), f"link and name differ: {match.group(0)}"
        assert (match["start"], match["end"]) == (match["link_start"], match["link_end"]), (
            f"the link's lines differ from the text's: {match.group(0)}")
        ranges.append(Range(match["path"], int(match["start"]), int(match["end"]), match["first"],
                            match["last"] or match["first"], match["between"] == " | ", match.group(0)))
    return ranges


def definition_lines(path: str, qualified_name: str) -> tuple[int, int]:
    """(first line including decorators, last line) of a top-level def/class or a method ``Class.name``."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    body, node = tree.body, None
    for part in qualified_name.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part), None)
        assert node is not None, f"{path} has no definition {qualified_name}"
        body = node.body
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return first, node.end_lineno


def expected_range(written: Range) -> tuple[int, int]:
    start = definition_lines(written.path, written.first)[0]
    end = definition_lines(written.path, written.last)[1]
    return start, end


def test_each_range_starts_and_ends_with_the_definitions_it_names():
    ranges = written_ranges(reading_path_text())
    assert len(ranges) >= 8
    wrong = []
    for written in ranges:
        start, end = expected_range(written)
        if (written.start, written.end) != (start, end):
            wrong.append(f"{written.path} {written.first}..{written.last}: README says {written.start}-"
                         f"{written.end}, the code has {start}-{end}")
    assert not wrong, ("README's reading path is stale (run `python tests/test_reading_path.py`):\n  "
                       + "\n  ".join(wrong))


def test_the_ranges_cover_the_core_and_add_up_to_the_stated_total():
    text = reading_path_text()
    ranges = written_ranges(text)
    counted = [r for r in ranges if r.counted]
    names = {r.first for r in counted} | {r.last for r in counted}
    # the brief of the reading path: the tensor, the node, the engine, and a few ops
    assert {"Tensor", "Tensor._make", "Tensor.backward", "Tensor._accumulate_grad", "Function",
            "topological_order", "run_backward", "unbroadcast", "Add", "Mul"} <= names
    total = sum(r.end - r.start + 1 for r in counted)
    stated = TOTAL.findall(text)
    assert len(stated) == 1, "the table must state its total once, as **N lines**"
    assert int(stated[0].replace(",", "")) == total, f"the numbered ranges add up to {total} lines"
    assert 200 <= total <= 250, f"'the idea in ~250 lines' is {total} lines"
    assert "### The idea in ~250 lines" in README.read_text(encoding="utf-8")


def test_the_size_of_the_three_files_is_stated_about_right():
    stated = re.search(r"three files are about ([\d,]+) lines", README.read_text(encoding="utf-8"))
    assert stated, "README should say how long tensor.py, autograd.py and ops.py are"
    actual = sum(len((ROOT / "tinygrad_ln" / name).read_text(encoding="utf-8").splitlines())
                 for name in ("tensor.py", "autograd.py", "ops.py"))
    assert abs(int(stated[1].replace(",", "")) - actual) <= 0.1 * actual, f"they have {actual} lines"


def test_ranges_do_not_overlap():
    by_file: dict[str, list[Range]] = {}
    for r in written_ranges(reading_path_text()):
        by_file.setdefault(r.path, []).append(r)
    for path, ranges in by_file.items():
        ranges.sort(key=lambda r: r.start)
        for before, after in zip(ranges, ranges[1:]):
            assert before.end < after.start, f"{path}: {before.first} and {after.first} overlap"


def rewrite_readme() -> bool:
    """Rewrite every range and the total from the code; True if the README changed."""
    text = README.read_text(encoding="utf-8")
    section = reading_path_text()
    updated = section
    total = 0
    for written in written_ranges(section):
        start, end = expected_range(written)
        if written.counted:
            total += end - start + 1
        new = (written.text.replace(f"` {written.start}-{written.end}]", f"` {start}-{end}]")
               .replace(f"#L{written.start}-L{written.end})", f"#L{start}-L{end})"))
        updated = updated.replace(written.text, new)
    updated = TOTAL.sub(f"**{total} lines**", updated)
    if updated != section:
        README.write_text(text.replace(section, updated), encoding="utf-8")
    return updated != section


if __name__ == "__main__":
    changed = rewrite_readme()
    print("README.md: reading path " + ("rewritten; review with git diff" if changed else "already up to date"))
