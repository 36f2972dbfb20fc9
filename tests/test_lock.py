"""The hash-locked dependencies (requirements/*.lock, `make lock`) match pyproject.toml: every direct
dependency is in its lock at the version pyproject pins, and every locked package (indirect ones too)
carries hashes, so `pip install --require-hashes` installs exactly what was reviewed. A failure names
the dependency and the fix."""
from __future__ import annotations

import re
import tomllib

import pytest

from orchestrator.toolchain.render import PROJECT_DIR

LOCKS = {"services": ((), PROJECT_DIR / "requirements" / "services.lock"),
         "dev": (("platform", "test"), PROJECT_DIR / "requirements" / "dev.lock")}
_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(requirements: list[str]) -> dict[str, str]:
    out = {}
    for req in requirements:
        match = _REQ.match(req.strip())
        assert match, f"pyproject.toml: {req!r} is not pinned exactly (name==version)"
        out[canonical(match.group(1))] = match.group(3)
    return out


def locked(path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes), from a pip-compile --generate-hashes file."""
    entries: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text().splitlines():
        match = _REQ.match(line)
        if match:
            current = canonical(match.group(1))
            entries[current] = (match.group(3), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = entries[current]
            entries[current] = (version, hashes + 1)
    return entries


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_matches_pyproject(lock):
    extras, path = LOCKS[lock]
    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]
    wanted = pinned(project["dependencies"] + [r for e in extras for r in project["optional-dependencies"][e]])
    assert path.is_file(), f"{path.relative_to(PROJECT_DIR)} is missing: run `make lock`"
    have = locked(path)
    missing = sorted(n for n in wanted if n not in have)
    assert not missing, f"{path.name} lacks {', '.join(missing)} (added to pyproject.toml): run `make lock`"
    stale = sorted(f"{n} (pyproject {wanted[n]}, lock {have[n][0]})" for n in wanted if have[n][0] != wanted[n])
    assert not stale, f"{path.name} pins other versions than pyproject.toml: {'; '.join(stale)}: run `make lock`"
    unhashed = sorted(n for n, (_, hashes) in have.items() if hashes == 0)
    assert not unhashed, f"{path.name}: no hashes for {', '.join(unhashed)}: run `make lock`"
    assert len(have) > len(wanted), "indirect dependencies are locked too"


def test_services_lock_has_no_pulumi():
    have = locked(LOCKS["services"][1])
    assert not [n for n in have if n.startswith("pulumi")], "the services image carries no Pulumi"


def test_every_install_of_the_project_goes_through_the_lock():
    """make, the image and the workflows that install our own tree install the hashed lock, then the project
    without resolving anything (`--no-deps`); pr-comment installs the *base* branch, which brings its own pins."""
    makefile = (PROJECT_DIR / "Makefile").read_text()
    assert "--require-hashes -r requirements/dev.lock" in makefile
    assert "--require-hashes -r requirements/services.lock" in (PROJECT_DIR / "Dockerfile").read_text()
    checked = 0
    for workflow in sorted((PROJECT_DIR / ".github" / "workflows").glob("*.yml")):
        for line in workflow.read_text().splitlines():
            if "pip install" in line and "-e ." in line:
                checked += 1
                assert "--require-hashes -r requirements/dev.lock" in line and "--no-deps -e ." in line, \
                    f"{workflow.name}: installs the project without the lock: {line.strip()}"
    assert checked >= 3, checked
