"""Supply chain: every locked dependency is checked against a vulnerability advisory database.

`pip-audit` checks every package version in `uv.lock` (all dependency groups, every resolution
fork) against PyPI's advisory data, or OSV's when PyPI cannot answer. When no advisory database
can be reached the test is skipped and says why: it never passes without having looked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIP_AUDIT = Path(sys.executable).parent / "pip-audit"
# Tried in order; the first that answers for the probe audits the whole lock.
ADVISORY_SERVICES = ("pypi", "osv")

# Advisories accepted on purpose, each with the reason, passed to pip-audit as --ignore-vuln.
# An entry belongs here only while no fixed release can be locked; remove it once one can.
IGNORED_VULNERABILITIES: dict[str, str] = {}

pytestmark = pytest.mark.xdist_group("supply_chain")


def locked_requirements(lock_file: Path = ROOT / "uv.lock") -> list[list[str]]:
    """Every registry package of the lock as `name==version`, split into lists holding each
    name at most once (pip-audit refuses duplicates; a forked resolution locks two versions)."""
    lock = tomllib.loads(lock_file.read_text())
    batches: list[dict[str, str]] = []
    for package in lock["package"]:
        if "registry" not in package.get("source", {}):
            continue  # the project itself, or a path/git source: no advisories to look up
        batch = next((b for b in batches if package["name"] not in b), None)
        if batch is None:
            batch = {}
            batches.append(batch)
        batch[package["name"]] = f"{package['name']}=={package['version']}"
    return [sorted(batch.values()) for batch in batches]


@dataclass
class AuditReport:
    """What one pip-audit run found; `error` is set when the service could not be asked."""

    vulnerable: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    not_audited: dict[str, str] = field(default_factory=dict)
    audited: int = 0
    error: str | None = None

    @classmethod
    def from_output(cls, returncode: int, report: str | None, stderr: str) -> AuditReport:
        if report is None:
            last_line = (stderr.strip().splitlines() or [f"exit code {returncode}"])[-1]
            return cls(error=last_line[-300:])
        result = cls()
        for dependency in json.loads(report)["dependencies"]:
            pinned = f"{dependency['name']}=={dependency.get('version', '?')}"
            if "skip_reason" in dependency:
                result.not_audited[pinned] = dependency["skip_reason"]
                continue
            result.audited += 1
            if dependency["vulns"]:
                result.vulnerable[pinned] = dependency["vulns"]
        return result

    @property
    def unusable_because(self) -> str | None:
        """Why this service told us nothing, or None if it audited something."""
        if self.error is not None:
            return self.error
        if self.audited == 0:
            reasons = set(self.not_audited.values())
            return f"audited none of {len(self.not_audited)} packages ({'; '.join(reasons)})"
        return None


def run_pip_audit(
    requirements: list[str], service: str, workdir: Path, cache_dir: Path
) -> AuditReport:
    workdir.mkdir(parents=True, exist_ok=True)
    requirements_file = workdir / "requirements.txt"
    requirements_file.write_text("\n".join(requirements) + "\n")
    output = workdir / "report.json"
    output.unlink(missing_ok=True)
    ignores = [arg for vuln in IGNORED_VULNERABILITIES for arg in ("--ignore-vuln", vuln)]
    completed = subprocess.run(
        [
            str(PIP_AUDIT),
            *("--requirement", str(requirements_file)),
            "--no-deps",  # the lock is complete: every dependency is listed, pinned
            "--disable-pip",  # nothing is installed to resolve anything
            *("--vulnerability-service", service),
            *("--cache-dir", str(cache_dir)),
            *("--timeout", "15"),
            *("--format", "json", "--output", str(output)),
            *("--progress-spinner", "off"),
            *ignores,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = output.read_text() if output.exists() else None
    return AuditReport.from_output(completed.returncode, report, completed.stderr)


def describe(vulnerable: dict[str, list[dict[str, Any]]]) -> str:
    return "\n".join(
        f"  {pinned}: {vuln['id']} (aliases {', '.join(vuln.get('aliases', [])) or '-'}), "
        f"fixed in {', '.join(vuln.get('fix_versions', [])) or 'no release yet'}"
        for pinned, vulns in sorted(vulnerable.items())
        for vuln in vulns
    )


def test_every_locked_dependency_is_free_of_known_vulnerabilities(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # pip-audit's HTTP cache, kept between runs in pytest's cache (if that is enabled).
    cache = getattr(request.config, "cache", None)
    cache_dir = cache.mkdir("pip-audit") if cache is not None else tmp_path / "cache"
    batches = locked_requirements()
    probe = batches[0][:1]

    unreachable: list[str] = []
    for service in ADVISORY_SERVICES:
        why = run_pip_audit(probe, service, tmp_path / "probe", cache_dir).unusable_because
        if why is None:
            break
        unreachable.append(f"{service}: {why}")
    else:
        pytest.skip(
            "no vulnerability advisory database could be reached, the lock was NOT audited ("
            + " | ".join(unreachable)
            + "); run `uv run pytest tests/project/test_supply_chain.py` where PyPI's JSON API "
            "(pypi.org/pypi/<name>/<version>/json) or api.osv.dev answers"
        )

    reports = [
        run_pip_audit(batch, service, tmp_path / f"batch{number}", cache_dir)
        for number, batch in enumerate(batches)
    ]
    errors = [report.error for report in reports if report.error is not None]
    assert not errors, f"pip-audit could not finish with {service}: {errors}"
    not_audited = {k: v for report in reports for k, v in report.not_audited.items()}
    assert not not_audited, f"{service} could not audit these locked packages: {not_audited}"
    vulnerable = {k: v for report in reports for k, v in report.vulnerable.items()}
    assert not vulnerable, (
        f"known vulnerabilities in uv.lock ({service} advisories):\n{describe(vulnerable)}\n"
        "upgrade with `uv lock --upgrade-package NAME`; if no fixed release exists, add the "
        "id to IGNORED_VULNERABILITIES with the reason"
    )


def test_every_locked_version_is_audited_once_forks_included(tmp_path: Path) -> None:
    lock = tmp_path / "uv.lock"
    lock.write_text(
        "version = 1\n"
        '[[package]]\nname = "authsvc"\nversion = "0.1.0"\nsource = { editable = "." }\n'
        '[[package]]\nname = "deprecated"\nversion = "1.3.1"\n'
        'source = { registry = "https://pypi.org/simple" }\n'
        '[[package]]\nname = "deprecated"\nversion = "3.0.1"\n'
        'source = { registry = "https://pypi.org/simple" }\n'
        '[[package]]\nname = "httpx"\nversion = "0.28.1"\n'
        'source = { registry = "https://pypi.org/simple" }\n'
    )

    assert locked_requirements(lock) == [
        ["deprecated==1.3.1", "httpx==0.28.1"],
        ["deprecated==3.0.1"],
    ]


@pytest.mark.parametrize(
    ("returncode", "report", "stderr", "usable"),
    [
        (1, None, "requests.exceptions.ConnectionError: Failed to resolve 'api.osv.dev'", False),
        (
            0,
            '{"dependencies": [{"name": "httpx", "version": "0.28.1", '
            '"skip_reason": "Dependency not found on PyPI and could not be audited"}]}',
            "",
            False,
        ),
        (0, '{"dependencies": [{"name": "httpx", "version": "0.28.1", "vulns": []}]}', "", True),
    ],
)
def test_a_service_that_audited_nothing_counts_as_unreachable_not_as_clean(
    returncode: int, report: str | None, stderr: str, usable: bool
) -> None:
    result = AuditReport.from_output(returncode, report, stderr)

    assert (result.unusable_because is None) is usable


def test_a_vulnerable_locked_package_is_reported_with_its_fix() -> None:
    report = AuditReport.from_output(
        1,
        '{"dependencies": [{"name": "jinja2", "version": "2.10", "vulns": [{"id": '
        '"PYSEC-2019-217", "fix_versions": ["2.10.1"], "aliases": ["CVE-2019-10906"]}]}]}',
        "",
    )

    assert report.unusable_because is None
    assert describe(report.vulnerable) == (
        "  jinja2==2.10: PYSEC-2019-217 (aliases CVE-2019-10906), fixed in 2.10.1"
    )
