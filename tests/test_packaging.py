"""The wheel: only project-named top-level packages, every module of them, no test files, the license; and,
unpacked outside the checkout, the main job and the conformance suite run from it under their installed names.

The wheel is built from a copy of the tracked files (so that parallel test workers never share a build folder,
and so that a file missing from git is missing here too), without build isolation (no network needed).
CI also builds it with isolation, runs ``twine check`` and installs it into a fresh environment
(``make wheel-check``).
"""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
NAME, VERSION = PROJECT["project"]["name"], PROJECT["project"]["version"]
# The checkout folder of each installed package.
INSTALLED = {"sdeve": "sdeve", "sdeve_backends": "sdeve_backends", "sdeve_conformance": "conformance"}


def _tracked_copy(dest: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: cannot tell which files are part of the project")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("build")
    pytest.importorskip("setuptools")
    tmp = tmp_path_factory.mktemp("wheel")
    source = _tracked_copy(tmp / "src")
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--sdist", "--no-isolation", "--outdir",
                           str(tmp / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (found,) = (tmp / "dist").glob("*.whl")
    return found


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_only_project_named_top_level_packages(wheel: Path) -> None:
    dist_info = f"{NAME}-{VERSION}.dist-info"
    tops = {name.split("/")[0] for name in _names(wheel)}
    assert tops == {*INSTALLED, dist_info}, tops
    with zipfile.ZipFile(wheel) as archive:
        top_level = archive.read(f"{dist_info}/top_level.txt").decode() if f"{dist_info}/top_level.txt" in \
            archive.namelist() else ""
    assert set(top_level.split()) <= set(INSTALLED)


def test_every_module_of_the_packages_is_in_the_wheel(wheel: Path) -> None:
    """A new module or subpackage (say ``sdeve/samplers/``) that pyproject.toml does not list fails here."""
    names = set(_names(wheel))
    for package, folder in INSTALLED.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT / folder).as_posix()
            if "__pycache__" in relative:
                continue
            assert f"{package}/{relative}" in names, f"{folder}/{relative} is not in the wheel as {package}/{relative}"
    assert {"sdeve/py.typed", "sdeve_backends/py.typed"} <= names


def test_no_test_files_benchmarks_or_examples(wheel: Path) -> None:
    for name in _names(wheel):
        base = name.rsplit("/", 1)[-1]
        assert not (base.startswith("test_") or base == "conftest.py" or base.endswith("_test.py")), name
        assert not name.startswith(("tests/", "benchmarks/", "examples/", "docs/", "conformance/")), name


def test_license_file_and_spdx_expression(wheel: Path) -> None:
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
    assert PROJECT["project"]["license"] == "Apache-2.0"
    dist_info = f"{NAME}-{VERSION}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(f"{dist_info}/licenses/LICENSE").decode() == license_text
        metadata = email.parser.Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    assert metadata["License"] is None  # the deprecated free-text field is not written
    extras = set(metadata.get_all("Provides-Extra"))
    assert {"torch", "jax", "cupy", "dask", "cli", "conformance", "test", "docs", "all"} <= extras


def test_the_sdist_carries_the_license_and_the_tests(wheel: Path) -> None:
    (sdist,) = wheel.parent.glob("*.tar.gz")
    import tarfile

    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[-1] for name in archive.getnames()}
    assert {"LICENSE", "pyproject.toml", "README.md", "conformance/__main__.py"} <= names


def _run_outside(wheel: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in an empty folder with only the unpacked wheel (and site-packages) importable."""
    unpacked = tmp_path / "site"
    if not unpacked.exists():
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(unpacked)
    work = tmp_path / "elsewhere"
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(unpacked), PYTHONWARNINGS="ignore", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-P", *args] if sys.version_info >= (3, 11) else [sys.executable, *args],
                          capture_output=True, text=True, env=env, cwd=work, timeout=600)


def test_the_unpacked_wheel_runs_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    where = _run_outside(wheel, tmp_path, "-c", "import sdeve, sdeve_backends, sdeve_conformance; "
                         "print(sdeve.__file__, sdeve_conformance.__file__)")
    assert where.returncode == 0, where.stderr[-3000:]
    assert str(tmp_path / "site") in where.stdout and str(ROOT) not in where.stdout
    job = _run_outside(wheel, tmp_path, "-m", "sdeve", "--steps", "30", "--batch", "200", "--no-plot",
                       "--no-progress")
    assert job.returncode == 0, job.stderr[-3000:]
    assert "weight error" in job.stdout
    suite = _run_outside(wheel, tmp_path, "-m", "sdeve_conformance", "--backends", "numpy", "--dtypes", "float64",
                         "--checks", "schedule,step_pred,step_correct,add_noise")
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-3000:]
    assert "numpy (cpu; float64): PASS" in suite.stdout
    helped = _run_outside(wheel, tmp_path, "-m", "sdeve_conformance", "--help")
    assert "usage: python -m sdeve_conformance" in helped.stdout
