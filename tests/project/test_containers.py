"""Container packaging: the Dockerfile, .dockerignore, docker-compose.yml and the entrypoint.

No Docker daemon is needed. The image files are linted and checked statically; the compose
file is validated offline against the Compose specification schema vendored by
check-jsonschema; the entrypoint script runs on the host against the project's virtualenv and
a throw-away PostgreSQL database, exactly as it runs inside the image.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import yaml

from app.config import Settings
from app.schema_migrations import head_revision

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
# Not resolved: the venv's python is a symlink to the base interpreter, its tools are not.
VENV_BIN = Path(sys.executable).parent

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
UNREACHABLE_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:1/unreachable"
SERVER_STARTED_MARKERS = ("Uvicorn running on", "Application startup complete")


def _venv_tool(name: str) -> Path:
    tool = VENV_BIN / name
    assert tool.is_file(), f"`{name}` is missing from {VENV_BIN}; run `uv sync` (dev group)"
    return tool


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def _dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile, with comments dropped and continuation lines joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    defaults: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ARG" and "=" in instruction.arguments:
            name, _, value = instruction.arguments.partition("=")
            defaults[name.strip()] = value.strip().strip("\"'")
    return defaults


def _substitute_args(value: str, args: Mapping[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda match: args.get(match[1], match[0]), value)


@pytest.fixture(scope="module")
def final_stage() -> list[Instruction]:
    stages = _stages(_dockerfile_instructions(DOCKERFILE.read_text()))
    assert stages, "Dockerfile has no FROM"
    return stages[-1]


def _only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [instruction for instruction in stage if instruction.keyword == keyword]
    assert len(found) == 1, f"final stage should have exactly one {keyword}, found {found}"
    return found[0]


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(_venv_tool("hadolint")), "--no-color", "--failure-threshold", "warning", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_dockerfile_is_multi_stage() -> None:
    stages = _stages(_dockerfile_instructions(DOCKERFILE.read_text()))
    assert len(stages) >= 2, "expected a builder stage and a separate runtime stage"


def test_dockerfile_final_stage_runs_as_non_root_user(final_stage: list[Instruction]) -> None:
    users = [instruction for instruction in final_stage if instruction.keyword == "USER"]
    assert users, "final stage never switches away from root"
    user = _substitute_args(users[-1].arguments, _arg_defaults(final_stage))
    name = user.partition(":")[0]
    assert name not in {"root", "0"}, f"final stage runs as {user!r}"
    assert "$" not in name, f"USER {user!r} refers to an ARG without a default"


def test_dockerfile_final_stage_has_liveness_healthcheck(
    final_stage: list[Instruction],
) -> None:
    healthcheck = _only(final_stage, "HEALTHCHECK")
    assert not healthcheck.arguments.upper().startswith("NONE")
    assert "/health/live" in healthcheck.arguments
    # python:*-slim ships no curl or wget: the probe has to be Python.
    assert "python" in healthcheck.arguments


def test_dockerfile_final_stage_serves_on_port_8000_by_default(
    final_stage: list[Instruction],
) -> None:
    assert "8000" in _only(final_stage, "EXPOSE").arguments.split()
    assert "entrypoint" in _only(final_stage, "ENTRYPOINT").arguments
    assert _only(final_stage, "CMD").arguments == '["serve"]'


# --------------------------------------------------------------------------------------------
# .dockerignore
# --------------------------------------------------------------------------------------------


def _dockerignore_pattern(pattern: str) -> re.Pattern[str]:
    """Docker's glob syntax: `*` and `?` stay within one path element, `**` spans several."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern.strip("/"))
    translated = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(translated.get(part, re.escape(part)) for part in parts))


def _dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw_line in DOCKERIGNORE.read_text().splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        rules.append((negated, _dockerignore_pattern(line.removeprefix("!"))))
    return rules


def _is_sent_to_build(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether `path` (relative to the context) survives .dockerignore; the last match wins and
    a pattern matching a parent directory matches everything below it."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[:length]) for length in range(1, len(parts) + 1)]
    included = True
    for negated, pattern in rules:
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            included = negated
    return included


def _copied_context_paths() -> list[str]:
    """Source paths of every COPY/ADD that reads from the build context (not --from a stage)."""
    paths: list[str] = []
    for instruction in _dockerfile_instructions(DOCKERFILE.read_text()):
        if instruction.keyword not in {"COPY", "ADD"}:
            continue
        words = shlex.split(instruction.arguments)
        if any(word.startswith("--from") for word in words):
            continue
        sources = [word for word in words if not word.startswith("--")][:-1]
        paths.extend(source.rstrip("/") for source in sources)
    return paths


def test_dockerignore_admits_every_file_the_image_copies() -> None:
    rules = _dockerignore_rules()
    copied = _copied_context_paths()
    assert copied, "Dockerfile copies nothing from the build context"
    files: list[str] = []
    for source in copied:
        source_path = ROOT / source
        assert source_path.exists(), f"Dockerfile copies {source}, which does not exist"
        if source_path.is_dir():
            files.extend(
                str(path.relative_to(ROOT))
                for path in source_path.rglob("*")
                if path.is_file() and "__pycache__" not in path.parts
            )
        else:
            files.append(source)
    excluded = [path for path in files if not _is_sent_to_build(path, rules)]
    assert not excluded, f".dockerignore hides files the image needs: {excluded}"


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.production",
        ".git/config",
        ".venv/bin/python",
        "var/keys/signing.pem",
        "var/authsvc.db",
        "secrets/jwt_private_key.pem",
        "app/__pycache__/config.cpython-311.pyc",
    ],
)
def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build(path: str) -> None:
    assert not _is_sent_to_build(path, _dockerignore_rules())


# --------------------------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>\w+))"
)
# Values a reader immediately recognises as placeholders for a local stack.
OBVIOUS_DEV_SECRETS = {"", "authsvc", "postgres", "changeme", "dev", "development", "secret"}
SECRET_NAME = re.compile(
    r"PASSWORD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|ENCRYPTION_KEY|HMAC_KEY", re.IGNORECASE
)


def _interpolate(value: str, environment: Mapping[str, str]) -> str:
    """Compose variable interpolation, as `docker compose config` performs it."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"] or "", match["arg"] or ""
        is_set = name in environment and (environment[name] != "" or not op.startswith(":"))
        if op.endswith("-"):
            return environment[name] if is_set else arg
        if op.endswith("?"):
            if not is_set:
                raise LookupError(f"compose requires ${name}: {arg}")
            return environment[name]
        if op.endswith("+"):
            return arg if is_set else ""
        return environment.get(name, "")

    return _INTERPOLATION.sub(replace, value)


def _interpolate_tree(node: Any, environment: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return _interpolate(node, environment)
    if isinstance(node, list):
        return [_interpolate_tree(item, environment) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, environment) for key, value in node.items()}
    return node


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any]) -> dict[str, Any]:
    """The compose file as a fresh checkout sees it: no .env, no variables exported."""
    resolved = _interpolate_tree(raw_compose, environment={})
    assert isinstance(resolved, dict)
    return resolved


def _service_environment(compose: Mapping[str, Any], service: str) -> dict[str, str]:
    environment = compose["services"][service].get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def _named_volumes_of(service: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for volume in service.get("volumes", []):
        source = volume["source"] if isinstance(volume, dict) else volume.partition(":")[0]
        if source and not source.startswith((".", "/", "~")):
            names.append(source)
    return names


def test_compose_file_matches_the_compose_specification() -> None:
    result = subprocess.run(
        [
            str(_venv_tool("check-jsonschema")),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_starts_without_an_env_file(raw_compose: dict[str, Any]) -> None:
    # A `${VAR:?message}` would make `docker compose up` fail on a fresh checkout.
    _interpolate_tree(raw_compose, environment={})


def test_compose_declares_the_full_stack(compose: dict[str, Any]) -> None:
    assert {"db", "redis", "mail", "authsvc"} <= set(compose["services"])
    assert compose["services"]["db"]["image"].startswith("postgres:16")
    assert compose["services"]["redis"]["image"].startswith("redis:7")
    assert compose["services"]["mail"]["image"].startswith("axllent/mailpit")
    assert compose["services"]["authsvc"]["build"] in (".", {"context": "."})


def test_compose_db_is_health_checked_and_keeps_data_in_a_named_volume(
    compose: dict[str, Any],
) -> None:
    db = compose["services"]["db"]
    assert "pg_isready" in str(db["healthcheck"]["test"])
    volumes = _named_volumes_of(db)
    assert volumes, "PostgreSQL data would be lost with the container"
    assert set(volumes) <= set(compose.get("volumes") or {})


def test_compose_redis_is_health_checked(compose: dict[str, Any]) -> None:
    assert "ping" in str(compose["services"]["redis"]["healthcheck"]["test"])


def test_compose_authsvc_starts_only_after_db_and_redis_are_healthy(
    compose: dict[str, Any],
) -> None:
    depends_on = compose["services"]["authsvc"]["depends_on"]
    assert depends_on["db"]["condition"] == "service_healthy"
    assert depends_on["redis"]["condition"] == "service_healthy"
    assert "mail" in depends_on


def test_compose_authsvc_uses_the_db_service_with_its_credentials(
    compose: dict[str, Any],
) -> None:
    db = _service_environment(compose, "db")
    url = urlsplit(_service_environment(compose, "authsvc")["AUTH_DATABASE_URL"])
    assert url.scheme == "postgresql+asyncpg"
    assert url.hostname == "db"
    assert url.port in {None, 5432}
    assert url.username == db["POSTGRES_USER"]
    assert url.password == db["POSTGRES_PASSWORD"]
    assert url.path == f"/{db['POSTGRES_DB']}"


def test_compose_authsvc_uses_the_redis_service(compose: dict[str, Any]) -> None:
    url = urlsplit(_service_environment(compose, "authsvc")["AUTH_REDIS_URL"])
    assert url.scheme == "redis"
    assert url.hostname == "redis"


def test_compose_authsvc_sends_mail_to_mailpit(compose: dict[str, Any]) -> None:
    environment = _service_environment(compose, "authsvc")
    assert environment["AUTH_EMAIL_BACKEND"] == "smtp"
    assert environment["AUTH_SMTP_HOST"] == "mail"
    assert environment["AUTH_SMTP_PORT"] == "1025"
    assert environment["AUTH_SMTP_STARTTLS"].lower() == "false"


def test_compose_authsvc_is_reachable_and_health_checked(compose: dict[str, Any]) -> None:
    authsvc = compose["services"]["authsvc"]
    assert any(str(port).endswith(":8000") for port in authsvc["ports"])
    assert "/health/ready" in str(authsvc["healthcheck"]["test"])


def test_compose_lets_requests_in_flight_drain_before_killing_authsvc(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Docker sends SIGKILL after stop_grace_period (default 10 s): it must outlast the
    # service's own drain, or requests in flight are cut off mid-way.
    for name in [name for name in os.environ if name.startswith("AUTH_")]:
        monkeypatch.delenv(name)
    for name, value in _service_environment(compose, "authsvc").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AUTH_DATA_ENCRYPTION_KEY", _fernet_key())  # what the entrypoint adds
    drain = Settings(_env_file=None).shutdown_grace_seconds
    period = compose["services"]["authsvc"].get("stop_grace_period", "10s")
    seconds = re.fullmatch(r"(\d+)s", period)
    assert seconds, f"write it in whole seconds: {period}"
    assert int(seconds[1]) > drain


def test_compose_authsvc_settings_pass_the_production_safety_checks(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = _service_environment(compose, "authsvc")
    assert environment["AUTH_ENVIRONMENT"] == "production"
    # Without .env the data encryption key is empty: the entrypoint creates it (see
    # test_entrypoint_creates_the_key_ring_on_first_start_and_keeps_it) and exports it.
    assert environment["AUTH_DATA_ENCRYPTION_KEY"] == ""
    assert environment["AUTH_CREATE_KEY_RING"] == "true"
    environment["AUTH_DATA_ENCRYPTION_KEY"] = _fernet_key()
    for name in [name for name in os.environ if name.startswith("AUTH_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    Settings(_env_file=None)  # raises UnsafeProductionSettings if compose is not enough


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def test_compose_passes_the_data_encryption_key_from_env(raw_compose: dict[str, Any]) -> None:
    key = _fernet_key()
    resolved = _interpolate_tree(raw_compose, environment={"AUTH_DATA_ENCRYPTION_KEY": key})
    assert _service_environment(resolved, "authsvc")["AUTH_DATA_ENCRYPTION_KEY"] == key


def test_compose_hardcodes_no_real_looking_secrets(compose: dict[str, Any]) -> None:
    leaks: list[str] = []
    for name, service in compose["services"].items():
        for key, value in _service_environment(compose, name).items():
            is_secret = SECRET_NAME.search(key) and not key.endswith("_FILE")
            if is_secret and value not in OBVIOUS_DEV_SECRETS:
                leaks.append(f"{name}.{key}")
            if "://" in value and urlsplit(value).password not in {None, *OBVIOUS_DEV_SECRETS}:
                leaks.append(f"{name}.{key} (password in URL)")
        assert "env_file" not in service or service["env_file"] in (".env", [".env"])
    assert not leaks, f"hardcoded secrets in docker-compose.yml: {leaks}"


# --------------------------------------------------------------------------------------------
# docker/entrypoint.sh, run on the host
# --------------------------------------------------------------------------------------------


async def _admin_execute(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _alembic_revision(dsn: str) -> str | None:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        if not await connection.fetchval("SELECT to_regclass('public.alembic_version')"):
            return None
        revision: str | None = await connection.fetchval("SELECT version_num FROM alembic_version")
        return revision
    finally:
        await connection.close()


@dataclass(frozen=True)
class Database:
    name: str

    @property
    def url(self) -> str:
        """The URL authsvc is given."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.name}"

    def alembic_revision(self) -> str | None:
        return asyncio.run(_alembic_revision(f"postgresql://postgres@127.0.0.1:5432/{self.name}"))


@pytest.fixture
def database() -> Iterator[Database]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    name = f"authsvc_entrypoint_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield Database(name)
    finally:
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Entrypoint:
    """One run of `sh docker/entrypoint.sh ARGS`, its output captured in a file."""

    process: subprocess.Popen[bytes]
    log: Path
    port: int
    environment: dict[str, str]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM, as `docker stop` sends it; the exit code once the server has shut down."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`authsvc ARGS` through the entrypoint with the same settings, as
        `docker compose run --rm authsvc ARGS` runs it."""
        return subprocess.run(
            ["sh", str(ENTRYPOINT), *args],
            cwd=self.log.parent,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"entrypoint still running after {timeout}s; output:\n{self.output()}")

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=2)

    def wait_for_200(self, path: str, timeout: float = 60) -> None:
        """Poll `path` until it answers 200; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"exited with {self.process.returncode}; output:\n{self.output()}")
            try:
                if self.get(path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        pytest.fail(f"{path} not 200 within {timeout}s; output:\n{self.output()}")


class StartEntrypoint(Protocol):
    def __call__(self, *args: str, **settings: str) -> Entrypoint: ...


@pytest.fixture
def run_entrypoint(tmp_path: Path) -> Iterator[StartEntrypoint]:
    """Start the entrypoint the way the image does, with the venv's `authsvc` on PATH."""
    started: list[Entrypoint] = []

    def start(*args: str, **settings: str) -> Entrypoint:
        port = _free_port()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
        environment |= {
            "PATH": f"{VENV_BIN}{os.pathsep}{environment.get('PATH', '')}",
            "AUTH_ENVIRONMENT": "development",
            "AUTH_HOST": "127.0.0.1",
            "AUTH_PORT": str(port),
            "AUTH_KEYS_DIR": str(tmp_path / "keys"),
            "AUTH_EMAIL_BACKEND": "console",
            # Any migration must come from the entrypoint, not from the app's start-up.
            "AUTH_AUTO_MIGRATE": "false",
            **settings,
        }
        log = tmp_path / f"entrypoint-{len(started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                ["sh", str(ENTRYPOINT), *args],
                cwd=tmp_path,  # no stray .env from the checkout
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        entrypoint = Entrypoint(process, log, port, environment)
        started.append(entrypoint)
        return entrypoint

    yield start

    for entrypoint in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(entrypoint.process.pid, signal.SIGKILL)
        entrypoint.process.wait(timeout=10)


def _command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_entrypoint_migrates_then_serves_and_stops_on_sigterm(
    run_entrypoint: StartEntrypoint, database: Database
) -> None:
    entrypoint = run_entrypoint("serve", AUTH_DATABASE_URL=database.url)  # the image's CMD

    entrypoint.wait_for_200("/health/ready")
    assert database.alembic_revision() == head_revision()

    # The shell exec'd the server, so `docker stop` signals the server itself.
    command_line = _command_line(entrypoint.process.pid)
    assert not any(part.endswith("entrypoint.sh") for part in command_line), command_line
    assert entrypoint.stop() in {0, -signal.SIGTERM}, entrypoint.output()


def _current_kid(entrypoint: Entrypoint) -> str:
    listing = entrypoint.cli("keys", "list")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    current = [
        line.split()[0] for line in listing.stdout.splitlines() if line.split()[2] == "active"
    ]
    assert len(current) == 1, listing.stdout
    return current[0]


def test_entrypoint_creates_the_key_ring_on_first_start_and_keeps_it(
    run_entrypoint: StartEntrypoint, database: Database
) -> None:
    production = {
        "AUTH_DATABASE_URL": database.url,
        "AUTH_ENVIRONMENT": "production",
        "AUTH_EMAIL_BACKEND": "smtp",
        "AUTH_CREATE_KEY_RING": "true",
    }

    first = run_entrypoint("serve", **production)
    first.wait_for_200("/health/ready")
    kid = _current_kid(first)
    data_key_file = Path(first.environment["AUTH_KEYS_DIR"]) / "data-encryption.key"
    data_key = data_key_file.read_text()
    assert data_key_file.stat().st_mode & 0o077 == 0, "the data key is the owner's only"
    first.stop(timeout=30)  # stopping promptly is test_..._stops_on_sigterm's business

    second = run_entrypoint("serve", **production)
    second.wait_for_200("/health/ready")
    assert _current_kid(second) == kid, "a restart must not replace the signing key"
    assert data_key_file.read_text() == data_key, "nor the data encryption key"
    assert data_key.strip() not in second.output(), "the key is never printed"


def test_entrypoint_skips_migrations_when_asked(
    run_entrypoint: StartEntrypoint, database: Database
) -> None:
    entrypoint = run_entrypoint(AUTH_DATABASE_URL=database.url, AUTH_SKIP_MIGRATIONS="1")

    entrypoint.wait_for_200("/health/live")
    assert entrypoint.get("/health/ready").status_code == 503
    assert database.alembic_revision() is None


def test_entrypoint_gives_up_when_the_database_never_answers(
    run_entrypoint: StartEntrypoint,
) -> None:
    # No arguments at all: serving is the default, and serving starts by waiting for the DB.
    entrypoint = run_entrypoint(
        AUTH_DATABASE_URL=UNREACHABLE_DATABASE_URL, AUTH_DB_WAIT_TIMEOUT="2"
    )

    returncode = entrypoint.wait(timeout=15)

    output = entrypoint.output()
    assert returncode != 0, output
    assert "database" in output.lower(), "the failure should say what it was waiting for"
    assert not any(marker in output for marker in SERVER_STARTED_MARKERS), output


def test_entrypoint_passes_other_commands_to_the_cli(
    run_entrypoint: StartEntrypoint, database: Database
) -> None:
    entrypoint = run_entrypoint("migrate", AUTH_DATABASE_URL=database.url)

    assert entrypoint.wait(timeout=60) == 0, entrypoint.output()
    assert database.alembic_revision() == head_revision()
    assert not any(marker in entrypoint.output() for marker in SERVER_STARTED_MARKERS)


def test_entrypoint_passes_help_through_without_waiting_for_the_database(
    run_entrypoint: StartEntrypoint,
) -> None:
    # An unreachable database and a long wait: `--help` must not touch either.
    entrypoint = run_entrypoint(
        "--help", AUTH_DATABASE_URL=UNREACHABLE_DATABASE_URL, AUTH_DB_WAIT_TIMEOUT="60"
    )

    assert entrypoint.wait(timeout=20) == 0, entrypoint.output()
    output = entrypoint.output()
    assert "serve" in output
    assert "migrate" in output
