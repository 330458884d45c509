"""The consumer kit is its own distribution: `authsvc-kit` installs with PyJWT, cryptography and
httpx only (FastAPI with the `fastapi` extra), and the service's wheel no longer carries it.

The wheels are built with uv and installed into fresh virtualenvs, resolved from the wheel's own
metadata; the lock's versions are passed as constraints, so the packages come from uv's cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.xdist_group("kit_distribution")

# Distributions only the service needs: none of them may come with the kit.
SERVICE_ONLY = (
    "authsvc",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "alembic",
    "argon2-cffi",
    "passlib",
    "libpass",
    "bcrypt",
    "uvicorn",
    "pydantic-settings",
    "redis",
    "limits",
    "typer",
    "structlog",
)
SERVICE_ONLY_MODULES = ("app", "sqlalchemy", "asyncpg", "alembic", "argon2", "passlib", "uvicorn")

# What the installed environment looks like, from inside it.
INSPECT = """
import importlib, importlib.metadata, importlib.util, json, sys
modules = sys.argv[1:]
importlib.import_module("authsvc_kit")
print(json.dumps({
    "distributions": sorted(
        d.metadata["Name"].lower().replace("_", "-") for d in importlib.metadata.distributions()
    ),
    "importable": sorted(m for m in modules if importlib.util.find_spec(m) is not None),
}))
"""


def uv_executable() -> str:
    """The uv running this suite (`uv run` exports it as UV), else the one on PATH."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to build the kit: run the suite with `uv run pytest`"
    return uv


def run(*args: str | Path, cwd: Path = ROOT) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheels of the kit and of the service, and the lock's versions as constraints."""
    out = tmp_path_factory.mktemp("dist")
    uv = uv_executable()
    for package in ("authsvc-kit", "authsvc"):
        run(uv, "build", "--package", package, "--wheel", "--out-dir", out, "--quiet")
    constraints = run(
        uv, "export", "--frozen", "--no-hashes", "--no-header", "--all-groups", "--all-packages",
        "--no-emit-workspace",
    )  # fmt: skip
    (out / "constraints.txt").write_text(constraints)
    return out


def wheel(dist_dir: Path, distribution: str) -> Path:
    (found,) = dist_dir.glob(f"{distribution}-*.whl")
    return found


def install(dist_dir: Path, venv: Path, requirement: str) -> dict[str, list[str]]:
    """Install `requirement` into a fresh virtualenv at `venv`; what it then holds."""
    uv = uv_executable()
    run(uv, "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    run(
        uv, "pip", "install", "--quiet", "--python", python,
        "--constraints", dist_dir / "constraints.txt", requirement,
    )  # fmt: skip
    # Run outside the repository, so its own `app/` and `kit/src` are not on the path.
    output = run(python, "-c", INSPECT, *SERVICE_ONLY_MODULES, "fastapi", cwd=venv)
    inspected: dict[str, list[str]] = json.loads(output)
    return inspected


def test_the_kit_wheel_holds_the_kit_and_requires_only_pyjwt_cryptography_and_httpx(
    dist_dir: Path,
) -> None:
    with zipfile.ZipFile(wheel(dist_dir, "authsvc_kit")) as archive:
        names = archive.namelist()
        (metadata,) = (name for name in names if name.endswith(".dist-info/METADATA"))
        requires = sorted(
            line.removeprefix("Requires-Dist: ")
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist: ")
        )

    packages = {name.split("/")[0] for name in names if not name.startswith("authsvc_kit-")}
    assert packages == {"authsvc_kit"}
    assert "authsvc_kit/py.typed" in names
    assert [requirement.split(">=")[0] for requirement in requires] == [
        "cryptography",
        "fastapi",
        "httpx",
        "pyjwt[crypto]",
    ]
    assert any(r.startswith("fastapi") and "extra == 'fastapi'" in r for r in requires)


def test_the_service_wheel_no_longer_ships_the_kit(dist_dir: Path) -> None:
    with zipfile.ZipFile(wheel(dist_dir, "authsvc")) as archive:
        packages = {name.split("/")[0] for name in archive.namelist()}

    assert "authsvc_kit" not in packages
    assert "app" in packages


def test_installing_the_kit_alone_pulls_none_of_the_services_dependencies(
    dist_dir: Path, tmp_path: Path
) -> None:
    installed = install(dist_dir, tmp_path / "venv", str(wheel(dist_dir, "authsvc_kit")))

    assert {"authsvc-kit", "pyjwt", "cryptography", "httpx"} <= set(installed["distributions"])
    assert not set(SERVICE_ONLY) & set(installed["distributions"])
    assert "fastapi" not in installed["distributions"]
    assert installed["importable"] == []


def test_the_fastapi_extra_adds_fastapi_and_still_none_of_the_service(
    dist_dir: Path, tmp_path: Path
) -> None:
    kit_wheel = wheel(dist_dir, "authsvc_kit")

    installed = install(dist_dir, tmp_path / "venv", f"authsvc-kit[fastapi] @ {kit_wheel.as_uri()}")

    assert "fastapi" in installed["distributions"]
    assert not set(SERVICE_ONLY) & set(installed["distributions"])
    assert installed["importable"] == ["fastapi"]
