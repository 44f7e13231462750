"""The Dockerfile's contract, checked without building it (`make docker-test` builds and runs it).

The base is a build argument; every file the build copies survives `.dockerignore`; the image runs
offline as a non-root user; and `scripts/docker-test.sh` skips with its reason where podman is absent.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (keyword, arguments), continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split()[0].upper(), line.partition(" ")[2].strip())
        for line in lines
        if line and not line.startswith("#")
    ]


def ignored(path: str, rules: list[str]) -> bool:
    """Whether the build context leaves `path` out (the last matching `.dockerignore` rule wins)."""
    out = False
    parts = path.split("/")
    for rule in rules:
        negate, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        pattern = pattern.removeprefix("**/")
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p.split("/")[-1], pattern) for p in prefixes):
            out = not negate
    return out


def test_the_base_is_a_build_argument_used_by_every_stage() -> None:
    steps = instructions()
    assert steps[0] == ("ARG", "BASE=python:3.11-slim")
    froms = [args for kind, args in steps if kind == "FROM"]
    assert len(froms) == 2 and all(f.startswith("${BASE}") for f in froms)


def test_every_copied_file_is_in_the_build_context() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        src
        for kind, args in instructions()
        if kind == "COPY" and "--from" not in args
        for src in args.split()[:-1]
    ]
    assert copied, "the Dockerfile copies nothing from the context"
    for src in copied:
        files = (
            [src]
            if (ROOT / src).is_file()
            else [str(p.relative_to(ROOT)) for p in (ROOT / src).rglob("*.py")]
        )
        assert files and not any(ignored(f, rules) for f in files), src
    assert ignored(".venv/bin/python", rules) and ignored("tests/media_factory.py", rules)
    assert ignored("mmfs/__pycache__/cli.cpython-311.pyc", rules)


def test_the_image_runs_offline_as_a_user() -> None:
    steps = instructions()
    runtime = steps[max(i for i, (kind, _) in enumerate(steps) if kind == "FROM") :]
    env = " ".join(args for kind, args in runtime if kind == "ENV")
    assert "HF_HUB_OFFLINE=1" in env and "TRANSFORMERS_OFFLINE=1" in env
    users = [args for kind, args in runtime if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("ENTRYPOINT", '["mmfs"]') in runtime


def test_docker_test_skips_with_its_reason_without_podman(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with the script's first tools and no podman
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        target = next(Path(d) / tool for d in ("/usr/bin", "/bin") if (Path(d) / tool).exists())
        (bin_dir / tool).symlink_to(target)
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "docker-test.sh")],
        env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "docker-test skipped: podman is absent" in out.stdout
