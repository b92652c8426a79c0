"""README.md is the front door, docs/*.md the rest; their measured numbers come from docs/results/*.json
through docs/tables.py, never typed by hand."""

import copy
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = {p.relative_to(ROOT).as_posix(): p.read_text() for p in [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))]}


def _load_tables():
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "docs" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = _load_tables()


@pytest.fixture(scope="module")
def results():
    return tables.load()


def test_every_page_says_what_its_json_says(results):
    stale = tables.check(results=results)
    assert not stale, f"stale blocks {stale}: run `python docs/tables.py`"


def test_a_number_changed_in_the_json_changes_the_blocks_that_show_it(results):
    changed = copy.deepcopy(results)
    changed["cpu_profile_3_seeds"]["runs"]["after"]["1"]["real-report"]["iou"] += 0.2
    stale = tables.check(results=changed)
    for block in ("docs/gan.md: gan_seeds", "docs/gan.md: gan_vs_nogan", "notebooks/03_training.ipynb: gan_seeds"):
        assert block in stale
    assert "docs/gan.md: d_learns" not in stale  # it shows no real-photo IoU

    changed = copy.deepcopy(results)
    run = next(r for r in changed["real_pairs"] if r["name"] == tables.PROFILE_RUNS["real"])
    run["scores"]["report/all"]["model"]["iou"] -= 0.2
    expected = {"docs/real-photos.md: real_pairs", "docs/real-photos.md: course_sets", "docs/gan.md: gan_seeds"}
    assert expected <= set(tables.check(results=changed))
    sample = next(r for r in changed["real_pairs"] if r["name"] == tables.PROFILE_RUNS["sample"])
    sample["scores"]["report/all"]["model"]["iou"] += 0.2
    expected = {"docs/real-photos.md: sample_offline", "docs/profiles.md: cpu_profile"}
    assert expected <= set(tables.check(results=changed))

    changed = copy.deepcopy(results)  # the course's own runs: the README's bottom line
    full = next(r for r in changed["course_data"] if r["name"] == tables.COURSE_RUNS["full"])
    full["scores"]["report/all"]["model"]["iou"] -= 0.2
    expected = {"README.md: readme_full", "README.md: readme_gan", "docs/gan.md: course_gan"}
    assert expected <= set(tables.check(results=changed))


def test_a_run_named_but_not_measured_is_an_error_naming_it(results, monkeypatch):
    monkeypatch.setitem(tables.REAL_PAIRS_RUNS, "no-such-run", "a run nobody made")
    with pytest.raises(KeyError, match="no-such-run"):
        tables.real_pairs(results)


def test_time_to_quality_gives_each_peers_ratio_or_the_bound_of_a_peer_that_never_got_there(results):
    run = results["bench_real_pairs"]["runs"][0]
    lines = tables.time_to_quality(results, "bench_real_pairs").splitlines()
    header = [cell.strip() for cell in lines[0].strip("| ").split(" | ")]
    rows = {line.strip("| ").split(" | ")[0]: line.strip("| ").split(" | ") for line in lines[2:] if line[:1] == "|"}
    checked = 0
    for row in run["rows"]:
        level, peer = row["name"][len("IoU ") :].split(": ")
        if level in rows:  # a level's row (the last row of each peer is its best IoU, not a level)
            cell = rows[level][header.index(peer)]
            trained = run["details"]["time_to_quality"][peer]["trained_s"]
            expected = f"{row['ratio']:.2f}x" if row["plain"] else f"not reached in {trained:.0f} s"
            assert expected in cell, (level, peer, cell)
            checked += 1
    assert checked == 3 * (len(header) - 2)  # three levels, each peer


def test_every_renderer_fills_a_block_and_every_block_stands_right():
    used = set()
    for name, text in PAGES.items():
        for match in tables.BLOCK.finditer(text):
            used.add(match.group(1))
            body = match.group(2)
            if "\n" in body:  # a table: markers on lines of their own, blank lines around the table
                assert body.startswith("\n\n") and body.endswith("\n\n"), f"{name}: {match.group(1)}"
            else:  # inline: a line that starts with `<!--` would become raw HTML, not part of the sentence
                line_start = text.rfind("\n", 0, match.start()) + 1
                assert text[line_start : match.start()].strip(), f"{name}: {match.group(1)} starts a line"
    assert used == set(tables.RENDERERS)


def test_readme_is_a_front_door():
    assert len(README) <= 10_000, f"README.md has {len(README)} characters: move some to docs/"
    first_section = README.index("\n## ")
    picture = README.index("![")
    assert README.index("\n\n") < picture < first_section  # the description, then the picture, then sections
    assert "(docs/images/front.png)" in README[picture : README.index("\n", picture)]


def _links(text: str) -> list[str]:
    return [link for link in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", link)]


def test_readme_links_every_docs_page_and_each_exists():
    paths = {link.split("#")[0] for link in _links(README)}
    linked = {path for path in paths if re.fullmatch(r"docs/[\w.-]+\.md", path)}
    assert linked == {f"docs/{p.name}" for p in ROOT.glob("docs/*.md")}


def _anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_relative_link_and_anchor_resolves(page):
    for link in _links(PAGES[page]):
        path, _, anchor = link.partition("#")
        target = (ROOT / page).parent / path if path else ROOT / page
        assert target.exists() or path == "docs/images/front.png", f"{page}: {link}"  # the picture comes later
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(), flags=re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{page}: {link}"
