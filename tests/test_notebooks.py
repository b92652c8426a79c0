"""The notebooks as chapters: badge, title, summary, short cells, stored outputs. nbval runs them
(see pyproject.toml); these tests check what a learner sees on the repository page."""

import json
import re
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))  # the chapters; notebooks/solutions/ holds their answers
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
CHAPTERS = [
    "01_data_exploration.ipynb",
    "02_model_building.ipynb",
    "03_training.ipynb",
    "04_predict_and_compare.ipynb",
    "05_rgba_export.ipynb",
]
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
COLAB = REPOSITORY.replace("https://github.com/", "https://colab.research.google.com/github/")
BADGE = COLAB + "/blob/main/notebooks/{name}"
CHECK = "nbval-check-output"  # a cell tag: nbval compares the cell's output with the stored one
MARKERS = ("NBVAL_CHECK_OUTPUT", "NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP")  # as comments they clutter the code


def _cells(path: Path, kind: str | None = None) -> list[dict]:
    cells = json.loads(path.read_text())["cells"]
    return [cell for cell in cells if kind is None or cell["cell_type"] == kind]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _text(output: dict) -> str:
    text = output.get("text") or output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def test_the_course_has_its_five_chapters_in_order():
    assert [path.name for path in NOTEBOOKS] == CHAPTERS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_opens_with_a_colab_badge_and_a_title(path):
    first = _cells(path)[0]
    assert first["cell_type"] == "markdown"
    assert BADGE.format(name=path.name) in _source(first)
    assert any(line.startswith("# ") for line in _source(first).splitlines())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_ends_with_a_summary_and_exercises(path):
    headings = [line for cell in _cells(path, "markdown") for line in _source(cell).splitlines()]
    assert "## Summary" in headings and "## Try this" in headings
    assert "What you will learn" in _source(_cells(path)[0])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_code_cell_is_longer_than_30_lines(path):
    lengths = [len(_source(cell).splitlines()) for cell in _cells(path, "code")]
    assert max(lengths) <= 30, f"a cell of {max(lengths)} lines: move that code into bgremove_utils"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.stem)
def test_no_markdown_cell_is_longer_than_25_lines(path):
    long = [_source(cell)[:60] for cell in _cells(path, "markdown") if len(_source(cell).splitlines()) > 25]
    assert not long, f"markdown cells over 25 lines: split them at a heading or a paragraph: {long}"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.stem)
def test_no_stored_output_shows_a_path_of_the_machine_that_ran_it(path):
    """A learner's run prints its own folders; a stored /tmp/... or /home/... path is another machine's."""
    found = [
        match.group(0)
        for cell in _cells(path, "code")
        for out in cell.get("outputs", [])
        for match in re.finditer(r"(?:/tmp/|/home/|/work/|/Users/|[A-Z]:\\)\S*", _text(out))
    ]
    assert not found, f"stored outputs print paths of the machine that ran them: {found[:3]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_install_runs_in_colab_only(path):
    setup = next(_source(cell) for cell in _cells(path, "code") if "pip install" in _source(cell))
    guard, install = setup.index('if "google.colab" in sys.modules:'), setup.index("pip install")
    assert guard < install and "drive.mount" not in json.dumps(_cells(path))
    # the repository (pyproject.toml's [project.urls]) cloned with its shipped photographs, or the package alone
    assert f"git clone -q --depth 1 {REPOSITORY} " in setup or f'"git+{REPOSITORY}"' in setup


def test_every_link_to_the_repository_is_the_one_in_pyproject():
    owner_name = REPOSITORY.removeprefix("https://github.com/")
    texts = {"README.md": (ROOT / "README.md").read_text()} | {p.name: p.read_text() for p in NOTEBOOKS}
    for name, text in texts.items():
        found = re.findall(r"(?:github\.com|colab\.research\.google\.com/github)/([\w.-]+/[\w.-]+)", text)
        assert found, f"{name} links to no repository"
        assert set(found) == {owner_name}, f"{name} links to {sorted(set(found))}, pyproject.toml says {owner_name}"
    assert BADGE.format(name=CHAPTERS[0]) in texts["README.md"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_carries_its_outputs_without_errors(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert path.stat().st_size < 2 * 1024 * 1024
    code = _cells(path, "code")
    assert all(cell["execution_count"] is not None for cell in code), "run the notebook before committing it"
    assert not [out for cell in code for out in cell["outputs"] if out["output_type"] == "error"]
    assert any(out.get("data", {}).keys() & {"image/png", "image/jpeg"} for cell in code for out in cell["outputs"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_compared_cells_print_only_what_is_the_same_every_run(path):
    checked = [cell for cell in _cells(path, "code") if CHECK in cell["metadata"].get("tags", [])]
    for cell in checked:
        texts = [_text(out) for out in cell["outputs"]]
        assert texts, f"a compared cell without a stored output:\n{_source(cell)}"
        assert not any(out["output_type"] == "stream" and out["name"] == "stderr" for out in cell["outputs"])
        assert not any(marker in text for text in texts for marker in ("it/s", "s/it", " at 0x", "\r"))
    assert checked, "tag the cells with deterministic output (shapes, counts) with " + CHECK


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.stem)
def test_nbval_markers_are_cell_tags_not_comments_in_the_learners_code(path):
    assert not [cell for cell in _cells(path, "code") if any(m in _source(cell) for m in MARKERS)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_chapter_ends_with_self_check_questions_whose_answers_are_one_click_away(path):
    text = "\n".join(_source(cell) for cell in _cells(path, "markdown"))
    questions = text[text.index("## Check yourself") :]
    assert 3 <= questions.count("<summary>Answer</summary>") <= 5


def test_every_chapter_has_a_solutions_notebook():
    assert [p.name for p in SOLUTIONS] == [name.replace(".ipynb", "_solutions.ipynb") for name in CHAPTERS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_says_what_the_learner_should_see(path):
    text = "\n".join(_source(cell) for cell in _cells(path, "markdown"))
    exercises = text[text.index("## Try this") :].split("## Check yourself")[0]
    numbered = re.findall(r"^\d+\. .*?(?=^\d+\. |\Z)", exercises, flags=re.M | re.S)
    assert numbered and all("You should see" in " ".join(exercise.split()) for exercise in numbered)


def test_the_gan_step_notebook_3_writes_out_is_the_one_train_runs(tiny_loaders):
    """Notebook 3 writes the GAN step in front of the learner and says `train` runs exactly it."""
    import torch

    from bgremove_utils.data.images import over
    from bgremove_utils.settings import make_config
    from bgremove_utils.training.gan import GAN, train_step
    from bgremove_utils.training.losses import discriminator_loss, generator_loss

    path = ROOT / "notebooks" / "03_training.ipynb"
    source = next(_source(cell) for cell in _cells(path, "code") if _source(cell).startswith("def gan_step("))
    namespace = {
        "torch": torch,
        "over": over,
        "discriminator_loss": discriminator_loss,
        "generator_loss": generator_loss,
    }
    exec(source, namespace)  # defines gan_step, as the notebook's cell does
    config = make_config("quick", image_size=32, base_channels=8, d_channels=8, depth=3, amp=False)
    photo, target = next(iter(tiny_loaders.train))
    package_step = lambda photo, target, gan, config: train_step(  # the backgrounds drawn as gan_step draws them
        photo, target, gan.backgrounds.draw(len(photo)), gan, config
    )
    runs = []
    for step in (namespace["gan_step"], package_step):
        gan = GAN.build(config, torch.device("cpu"))  # seeded: the same networks for both
        torch.manual_seed(1)  # the same backgrounds for both
        runs.append([step(photo, target, gan, config) for _ in range(3)])
    for ours, trains in zip(*runs):
        for key in ("loss_d", "loss_g", "g_adv", "alpha_l1", "alpha_bce", "colour_l1", "alpha_iou"):
            assert float(trains[key]) == pytest.approx(ours[key], rel=1e-5), key


def _notebook_namespace(name: str, starts: tuple[str, ...]) -> dict:
    """Exec the cells of a chapter that start with `starts` (its class and def cells), as its kernel does."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from bgremove_utils.training.losses import EDGE_WEIGHT, edge_band

    namespace = {"torch": torch, "nn": nn, "F": F, "EDGE_WEIGHT": EDGE_WEIGHT, "edge_band": edge_band}
    for cell in _cells(ROOT / "notebooks" / name, "code"):
        if _source(cell).startswith(starts):
            exec(_source(cell), namespace)
    return namespace


def test_the_blocks_notebook_2_writes_are_the_packages():
    """Notebook 2 writes Down, Up, the U-Net, ResBlock and D in front of the learner, then uses the
    package's: the same parameters from the same seed, and the same output for the same input."""
    import torch

    from bgremove_utils.models import DModel, GModel, count_parameters
    from bgremove_utils.settings import make_config

    ours = _notebook_namespace("02_model_building.ipynb", ("class ",))
    config = make_config("quick")
    photo, pasted = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    for mine, package, inputs in (
        (ours["UNet"](config.g), GModel(config.g), (photo,)),
        (ours["PatchD"](config.d), DModel(config.d), (photo, pasted)),
    ):
        torch.manual_seed(0)
        mine = type(mine)(config.g if isinstance(package, GModel) else config.d)
        torch.manual_seed(0)
        package = type(package)(package.config)
        assert count_parameters(mine) == count_parameters(package)
        with torch.no_grad():
            assert torch.allclose(mine(*inputs), package(*inputs), atol=1e-6)


def test_the_losses_notebook_2_writes_out_are_the_packages():
    """Notebook 2 writes D's loss and G's five terms in front of the learner: on random logits and
    cut-outs (with a soft edge, an empty and a full matte), each equals the package's."""
    import torch

    from bgremove_utils.training.losses import discriminator_loss, generator_loss, reconstruction_losses

    ours = _notebook_namespace("02_model_building.ipynb", ("def ",))
    torch.manual_seed(0)
    logits, target = 3 * torch.randn(4, 4, 32, 32), torch.rand(4, 4, 32, 32)
    target[:, 3] = (target[:, 3] > 0.6).float()
    target[1, 3], target[2, 3] = 0.0, 1.0
    target[3, 3, :, 16] = 0.5  # a soft column
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    mine = ours["reconstruction"](logits, target)
    for name, value in reconstruction_losses(logits, target).items():
        torch.testing.assert_close(mine[name], value)
    torch.testing.assert_close(ours["d_loss"](real, fake), discriminator_loss(real, fake))
    total, terms = generator_loss(fake, logits, target, rec_weight=100.0, adv_weight=10.0)
    torch.testing.assert_close(ours["adversarial"](fake), terms["g_adv"])
    torch.testing.assert_close(10 * ours["adversarial"](fake) + 100 * sum(mine.values()), total)


def test_notebook_3_overfits_one_batch_to_an_alpha_iou_of_0_98(tiny_loaders):
    """The first check of any training recipe: fresh networks learn one fixed batch by heart. The
    notebook's own function, on a batch of 8 of the sample's pictures at 32 px (nbval runs it at the
    notebook's 16 at 64 px)."""
    import torch

    from bgremove_utils.settings import make_config
    from bgremove_utils.training.gan import GAN
    from bgremove_utils.training.losses import reconstruction_losses

    ours = _notebook_namespace("03_training.ipynb", ("def batch_iou(", "def overfit_one_batch("))
    config = make_config("quick", image_size=32)
    photo, target = next(iter(tiny_loaders.train))
    ours |= {"GAN": GAN, "reconstruction_losses": reconstruction_losses, "device": torch.device("cpu")}
    curve = ours["overfit_one_batch"](photo, target, config, adversarial=False)
    assert curve[-1][1] >= 0.98, curve
