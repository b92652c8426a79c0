import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def _requirements(project: dict, extra: str) -> list[str]:
    """An extra's requirements, with those of the project's own extras it names (dev names app) in their place."""
    found = []
    for requirement in project["optional-dependencies"][extra]:
        own = re.fullmatch(rf"{project['name']}\[(\w+)\]", requirement.strip())
        found += _requirements(project, own.group(1)) if own else [requirement]
    return found


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {r.split(";")[0].split("#")[0].strip() for r in project["dependencies"] + _requirements(project, "dev")}
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]  # what pip installs inside the conda environment
    listed = {line.strip()[2:] for line in pip_section.splitlines() if line.strip().startswith("- ")} - {"-e ."}
    assert {_name(r): r for r in listed} == {_name(r): r for r in wanted}


def test_ci_runs_the_test_command_the_readme_gives():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    demo = blocks[0].strip()
    tests = next(block.strip() for block in blocks if block.strip().endswith("pytest"))  # the test command
    assert demo.endswith("python -m bgremove_utils demo") and "pip install -e ." in demo
    assert tests.endswith("pytest") and '".[dev]"' in tests
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert tests in ci_lines


def test_readme_links_every_notebook():
    readme = (ROOT / "README.md").read_text()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{notebook.name}" in readme


def test_command_line_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "bgremove_utils", "--help"], capture_output=True, text=True, check=True)
    for command in ("make-sample", "download", "train", "evaluate", "predict", "export-onnx", "app", "demo"):
        assert command in out.stdout


def test_a_plain_install_ships_every_subpackage():
    # Colab installs with `pip install git+...`, not editable: a subpackage that pyproject's package
    # list misses would be left out there, and `python -m bgremove_utils bench` would fail.
    from setuptools import find_packages

    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    shipped = set(find_packages(ROOT, include=find["include"]))
    on_disk = {p.parent.relative_to(ROOT).as_posix().replace("/", ".") for p in (ROOT / "bgremove_utils").rglob("*.py")}
    assert "bgremove_utils.bench" in on_disk and on_disk <= shipped


def test_dev_installs_the_app_extra_and_the_readme_says_how_to_install_it_alone():
    # CI installs .[dev] only: the ONNX and web-page tests need the app extra there
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    app = {_name(r) for r in project["optional-dependencies"]["app"]}
    assert {"onnxruntime", "gradio"} <= app and app <= {_name(r) for r in _requirements(project, "dev")}
    assert app.isdisjoint(_name(r) for r in project["dependencies"])  # the rest of the course does without
    assert 'pip install -e ".[app]"' in (ROOT / "README.md").read_text()
