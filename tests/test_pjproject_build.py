"""image/pjproject: the source pin refuses what is not pjproject 2.15.1, before
anything is built, and `make test PJSUA2=source` installs the phone without the wheel."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

PJPROJECT = Path(__file__).resolve().parent.parent / "image" / "pjproject"
BUILD = PJPROJECT / "build.sh"
RELEASE_TREE = "a0e14d00437610c19e66044642064b109926e61f"


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """Enough of a venv for the script's argument check: bin/python."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    return bin_dir.parent


@pytest.fixture
def fake_source(tmp_path: Path) -> Path:
    """A tree that is not pjproject: a configure script that must never run."""
    tree = tmp_path / "pjproject-2.15.1"
    (tree / "pjlib").mkdir(parents=True)
    (tree / "pjlib" / "version.mak").write_text("export PJ_VERSION_MAJOR := 2\n")
    configure = tree / "configure"
    configure.write_text(f"#!/bin/sh\ntouch {tmp_path}/configure-ran\n")
    configure.chmod(0o755)
    return tree


def git_tree_id(tree: Path, scratch: Path) -> str:
    """The git tree id of `tree`'s files, computed apart from build.sh's own way."""
    repo = scratch / "check.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    subprocess.run(
        ["git", f"--git-dir={repo}", f"--work-tree={tree}", "add", "-A", "-f", "."], check=True
    )
    done = subprocess.run(
        ["git", f"--git-dir={repo}", "write-tree"], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def build(venv: Path, src: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(BUILD), "--venv", str(venv), "--src", str(src), "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_tree_that_is_not_the_release_is_refused(
    venv: Path, fake_source: Path, tmp_path: Path
) -> None:
    done = build(venv, fake_source, tmp_path / "work")
    assert done.returncode == 1, done.stderr
    got = git_tree_id(fake_source, tmp_path)
    assert got != RELEASE_TREE
    assert f"the source's git tree is {got}, not 2.15.1's {RELEASE_TREE}" in done.stderr
    assert not (tmp_path / "configure-ran").exists()


def test_a_tarball_is_checked_without_its_top_folder(
    venv: Path, fake_source: Path, tmp_path: Path
) -> None:
    """GitHub's tarball holds pjproject-2.15.1/: the pin is on what is inside it."""
    tarball = tmp_path / "pjproject.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(fake_source, arcname=fake_source.name)
    done = build(venv, tarball, tmp_path / "work")
    assert done.returncode == 1, done.stderr
    assert f"git tree is {git_tree_id(fake_source, tmp_path)}," in done.stderr


def test_a_repository_without_the_release_commit_is_refused(
    venv: Path, fake_source: Path, tmp_path: Path
) -> None:
    subprocess.run(["git", "init", "-q", str(fake_source)], check=True)
    done = build(venv, fake_source, tmp_path / "work")
    assert done.returncode == 1, done.stderr
    assert "does not hold commit 7de6e686fee1642f5443a3f39f0e5ad5e478a117" in done.stderr


def test_a_missing_venv_is_a_usage_error(fake_source: Path, tmp_path: Path) -> None:
    done = build(tmp_path / "nothing", fake_source, tmp_path / "work")
    assert done.returncode == 2
    assert "is not a venv's python" in done.stderr


def test_the_source_venv_gets_every_requirement_but_the_wheel() -> None:
    done = subprocess.run(
        [sys.executable, str(PJPROJECT / "requirements.py"), "dev"],
        check=True,
        capture_output=True,
        text=True,
    )
    names = {re.split(r"[<>=!~;\s\[]", line, maxsplit=1)[0] for line in done.stdout.splitlines()}
    assert "pjsua2-python" not in names
    assert {"lxml", "pluggy", "pyalsaaudio", "pytest", "mypy"} <= names
