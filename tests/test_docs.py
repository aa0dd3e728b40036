"""The README and the documentation site: the README is short and gives the commands CI runs; its links and the
site's navigation point at pages that exist; the performance tables are generated from the benchmark JSON; and
(slow) the site builds with ``mkdocs build --strict``."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load(ROOT / "docs" / "hooks.py", "sdeve_docs_hooks")


def test_readme_is_at_most_200_lines() -> None:
    assert len(README.splitlines()) <= 200


def test_readme_gives_the_two_commands_and_ci_runs_the_test_command_as_given() -> None:
    block = re.search(r"```bash\n(.*?)```", README, re.DOTALL)
    assert block, "the README's first bash block holds the two commands"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make run", "make test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^\s*make test$", ci, re.MULTILINE), ".ci/run must run the README's test command exactly"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run: ", makefile, re.MULTILINE) and re.search(r"^test: ", makefile, re.MULTILINE)
    assert not re.search(r"@[A-Z_]+@", README), "a measurement is still a placeholder: measure it"


def test_readme_links_point_at_files_that_exist() -> None:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if target.startswith(("http://", "https://")):
            continue
        assert (ROOT / target).exists(), target


def _nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


def _mkdocs_config() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def test_every_page_is_in_the_navigation_and_every_nav_entry_exists() -> None:
    config = _mkdocs_config()
    listed = _nav_pages(config["nav"])
    docs = ROOT / "docs"
    for page in listed:
        assert (docs / page).is_file(), page
    optional = set(hooks.OPTIONAL_PAGES)
    pages = {p.relative_to(docs).as_posix() for p in docs.rglob("*.md")}
    assert pages - optional <= set(listed), f"pages not in mkdocs.yml's nav: {sorted(pages - optional - set(listed))}"


def test_an_optional_page_joins_the_navigation_when_it_exists(tmp_path: Path) -> None:
    config = {"docs_dir": str(tmp_path), "nav": [{"Home": "index.md"}, {"Getting started": [{"A": "a.md"}]},
                                                  {"Other": "other.md"}]}
    assert hooks.on_config(dict(config, nav=list(config["nav"])))["nav"] == config["nav"]
    (tmp_path / "distributed.md").write_text("# Distributed\n", encoding="utf-8")
    nav = hooks.on_config(dict(config, nav=list(config["nav"])))["nav"]
    assert nav[2] == {"Distributed (Dask)": "distributed.md"}
    again = hooks.on_config({"docs_dir": str(tmp_path), "nav": nav})["nav"]
    assert _nav_pages(again).count("distributed.md") == 1


def test_the_performance_tables_come_from_the_benchmark_json() -> None:
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    markers = hooks.MARKER.findall(page)
    assert {"benchmark-machine", "benchmark-targets"} <= set(markers) <= set(hooks.BLOCKS)
    payload = hooks.load_benchmarks()
    assert payload["settings"]["quick"] is False, "the committed JSON must be a full run, not --quick"
    rendered = hooks.render(page, payload)
    assert not hooks.MARKER.search(rendered)
    targets = hooks.targets_table(payload)
    n_targets = sum(r["target"] is not None for row in payload["rows"] for r in row["ratios"].values())
    assert n_targets >= 10 and targets.count("\n") == n_targets + 1
    for row in payload["rows"]:
        for ratio in row["ratios"].values():
            if ratio["target"] is not None:
                assert f"= {ratio['value']:.3g} | {ratio['target']} |" in targets


def test_the_renderer_reads_what_the_benchmarks_write() -> None:
    """A row built by the benchmark harness itself, through its own ``as_dict``, renders."""
    from benchmarks._report import Ratio, Row
    from benchmarks._timing import Timing

    timing = Timing(samples=[2e-5, 1.9e-5, 2.1e-5], number=100)
    row = Row("diffusers", "step_pred", "torch", "drop-in", (1, 3, 32, 32),
              {"ours": timing, "diffusers": timing}, [Ratio("ours/diffusers", 0.42, ["ours"], ["diffusers"],
                                                             ("<=", 0.5))])
    payload = {"rows": [row.as_dict()]}
    table = hooks.targets_table(payload)
    assert "| step_pred | torch · drop-in | (1, 3, 32, 32) | 20 µs | diffusers 20 µs | ours/diffusers = 0.42 | " \
           "<= 0.5 | yes |" in table


def test_a_run_on_a_loaded_machine_says_so() -> None:
    payload = hooks.load_benchmarks()
    quiet = dict(payload, machine=dict(payload["machine"], load_average=[2.1, 2.5, 4.0], usable_cores=2))
    loaded = dict(payload, machine=dict(payload["machine"], load_average=[6.3, 8.8, 8.2], usable_cores=2))
    assert "A loaded machine" not in hooks.machine_line(quiet)
    assert "A loaded machine" in hooks.machine_line(loaded)


def test_an_unknown_block_or_a_missing_json_fails_the_build(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown generated block"):
        hooks.render("<!-- generated: benchmark-nonsense -->", {"rows": []})
    with pytest.raises(FileNotFoundError, match="python -m benchmarks --json"):
        hooks.load_benchmarks(tmp_path / "absent.json")


def test_prose_after_a_parameter_list_becomes_notes() -> None:
    notes = _load(ROOT / "docs" / "griffe_notes.py", "sdeve_docs_griffe_notes") if importlib.util.find_spec(
        "griffe") else pytest.skip("griffe is not installed")
    text = ("Summary.\n\nParameters\n----------\nsigma_min, sigma_max\n    Levels.\nsnr : float\n    Ratio.\n\n"
            "The config is immutable.\n\nReturns\n-------\nint\n    A number.")
    fixed = notes.add_notes_header(text)
    assert "    Ratio.\n\nNotes\n-----\nThe config is immutable.\n\nReturns" in fixed
    assert notes.add_notes_header(fixed) == fixed  # idempotent
    plain = "Summary.\n\nParameters\n----------\nx\n    A value.\n\n    More about x."
    assert notes.add_notes_header(plain) == plain


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        pytest.skip("the [docs] extra is not installed")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    for page in ("index.html", "performance/index.html", "api/sdeve/index.html", "conformance/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
    performance = (tmp_path / "site" / "performance" / "index.html").read_text(encoding="utf-8")
    assert "generated:" not in performance and "ours/floor" in performance
    api = (tmp_path / "site" / "api" / "sdeve" / "index.html").read_text(encoding="utf-8")
    assert "step_pred" in api and "num_inference_steps" in api
    shutil.rmtree(tmp_path / "site")
