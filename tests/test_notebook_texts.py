"""A notebook's text must not retype the numbers that its own stored outputs print.

The notebooks are stored with the outputs of one run (the `quick` profile). A markdown cell that
restates a number printed by one of the notebook's code cells ("a test IoU of 0.742", "a median
of 5.6%") is true of that run only: the next run, another profile or a change in the code prints
other numbers, and the sentence is left contradicting the output beside it. Say what to look at
instead ("the median section 6 prints", "compare the two SADs in each row") and let the output
carry the number. Nothing is executed: the test reads the stored JSON.

What counts as a number in a markdown cell:
- a decimal with at least two digits after the point (0.742, 23.09). A one-digit decimal (0.5,
  2.6) or an integer (64 pixels, 480 pairs, 519,076 parameters) is a size, a count or a rounded
  landmark too often to be told apart from a result;
- a percentage of at least two digits (5.6%, 21%, 0.5%); one digit (4%) is as coarse as a
  one-digit decimal.
Numbers are compared by value (0.65 in the text matches 0.650 in an output), a percentage only
with a percentage. A rounded restatement (0.64 for a printed 0.643) is not caught.

What is left out, because it is not a claim about the stored run:
- code in the markdown, `code spans` and fenced blocks: settings and calls (`lr_g=0.002`, betas
  `(0.5, 0.999)`) that a table of the settings prints as well;
- link targets and bare URLs;
- the blocks `docs/tables.py` fills from the runs' JSON (`<!-- table: NAME -->`): measured elsewhere,
  written by a script, never typed (tests/test_docs.py keeps them true);
- in the outputs, `log 2 = 0.69` (or 0.693): the landmark of a D that cannot tell real from fake,
  a constant that the game report and notebook 2's first losses print beside the measured losses;
- in the outputs, the `<Figure size 712.8x237.6 with 3 Axes>` text that matplotlib stores beside
  each figure.

Every code cell's stored text counts (stream text, and the `text/plain` of results and displays),
not only the cells next to the sentence. A number that only coincides with a printed one (a value
measured elsewhere) is reported too: reword it. Cells are numbered as stored, from 0, all kinds.
"""

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))

PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?%")
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.]?\d)")  # not part of a version, a name or 1.3e-03's exponent
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
LINK = re.compile(r"\]\([^)]*\)|<https?://[^>]*>|https?://\S+")
GENERATED = re.compile(r"<!-- table: \w+ -->.*?<!-- /table -->", re.S)  # filled from the runs' JSON by docs/tables.py
LOG2 = re.compile(r"log 2 = 0\.693?\b")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def printed_numbers(cells: list[dict]) -> dict[tuple[str, Decimal], int]:
    """{(kind, value): the first code cell that prints it}, kind "%" or "."."""
    found = {}
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            text = _text(output.get("text") or output.get("data", {}).get("text/plain", ""))
            if text.startswith("<Figure size"):
                continue
            text = LOG2.sub(" ", text)
            for match in PERCENT.finditer(text):
                found.setdefault(("%", Decimal(match[1])), index)
            for match in DECIMAL.finditer(PERCENT.sub(" ", text)):
                found.setdefault((".", Decimal(match[0])), index)
    return found


def written_numbers(markdown: str) -> list[tuple[str, str, Decimal]]:
    """[(kind, as written, value)] of the numbers a markdown source states, code and links left out."""
    prose = LINK.sub(" ", CODE.sub(" ", GENERATED.sub(" ", markdown)))
    numbers = [
        ("%", match[0], Decimal(match[1]))
        for match in PERCENT.finditer(prose)
        if sum(ch.isdigit() for ch in match[1]) >= 2
    ]
    numbers += [
        (".", match[0], Decimal(match[0]))
        for match in DECIMAL.finditer(PERCENT.sub(" ", prose))
        if len(match[0].split(".")[1]) >= 2
    ]
    return numbers


def restated_numbers(cells: list[dict]) -> list[str]:
    """'cell N: "X" (printed by cell M)' for each number a markdown cell retypes from an output."""
    printed = printed_numbers(cells)
    return [
        f'cell {index}: "{written}" (printed by cell {printed[kind, value]})'
        for index, cell in enumerate(cells)
        if cell["cell_type"] == "markdown"
        for kind, written, value in written_numbers(_text(cell["source"]))
        if (kind, value) in printed
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_does_not_retype_what_the_stored_outputs_print(path):
    restated = restated_numbers(json.loads(path.read_text())["cells"])
    assert not restated, f"{path.relative_to(ROOT)} retypes its outputs' numbers:\n" + "\n".join(restated)


def test_what_counts_as_a_retyped_number():
    """The rules of the module's docstring, on a made-up notebook."""
    printed = "test IoU 0.742, median 5.6%, D loss 0.650 (log 2 = 0.69: it cannot tell), waited 4%, lr 2.0e-03\n"
    cells = [
        {"cell_type": "code", "source": "", "outputs": [{"output_type": "stream", "name": "stdout", "text": printed}]},
        {"cell_type": "markdown", "source": ["The IoU is 0.742 and the median 5.6%;\n", "D ends near 0.65."]},
        {"cell_type": "markdown", "source": "Set `lr=0.742`; near log 2 = 0.69; 4% more; about 0.7; 0.74; 2.00%."},
        {"cell_type": "markdown", "source": "[a link](https://example.org/0.742) and <https://example.org/5.6%>"},
    ]
    assert restated_numbers(cells) == [
        'cell 1: "5.6%" (printed by cell 0)',
        'cell 1: "0.742" (printed by cell 0)',
        'cell 1: "0.65" (printed by cell 0)',
    ]
