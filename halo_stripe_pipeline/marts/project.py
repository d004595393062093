"""Location of the dbt project and the connection each dbt invocation uses.

Profiles are written per invocation into a private temporary folder, from
the warehouse URL, so no credentials sit in the repository and concurrent
invocations never share a `profiles.yml` or a `target/` folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource
from packaging import version

from halo_stripe_pipeline.warehouse.connection import dbt_connection_params

PROFILE_NAME = "halo_stripe"
TARGET_NAME = "warehouse"
# Target schema for anything without its own schema config (dbt test
# failures, if stored); every model sets its own schema.
TARGET_SCHEMA = "analytics"
PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"

# Files whose content defines the parsed project (and so the manifest).
_PROJECT_GLOBS = ("dbt_project.yml", "models/**/*", "macros/**/*", "tests/**/*")


class OfflineDbtCliResource(DbtCliResource):
    """DbtCliResource that reads the dbt version from the installed package.

    The stock resource runs `dbt --version` before every command, and
    dbt-core 1.11 handles that by querying pypi.org for the latest release.
    The installed dbt-core package reports the same version without any
    network request.
    """

    @cached_property
    def _cli_version(self) -> version.Version:  # type: ignore[override]
        return version.parse(importlib.metadata.version("dbt-core"))


@dataclass(frozen=True)
class DbtWorkspace:
    """The folders of one dbt invocation: profiles, target and logs."""

    profiles_dir: Path
    target_path: Path

    def resource(self, project_dir: Path = PROJECT_DIR) -> OfflineDbtCliResource:
        return OfflineDbtCliResource(
            project_dir=os.fspath(project_dir),
            profiles_dir=os.fspath(self.profiles_dir),
            profile=PROFILE_NAME,
            target=TARGET_NAME,
            dbt_executable=dbt_executable(),
        )


def dbt_executable() -> str:
    """Return the `dbt` script installed beside this Python interpreter."""
    import sys

    candidate = Path(sys.executable).parent / "dbt"
    if candidate.exists():
        return os.fspath(candidate)
    found = shutil.which("dbt")
    if not found:
        raise FileNotFoundError(
            "the `dbt` command was not found next to the Python interpreter or on PATH:"
            " run `pip install -e .` in the project's virtual environment"
        )
    return found


def profile_yaml(db_url: str | None) -> str:
    """Return a profiles.yml for `db_url`, or a never-connecting one for parsing."""
    if db_url is None:
        params = {
            "host": "localhost",
            "port": 5432,
            "user": "postgres",
            "password": "",
            "dbname": "postgres",
        }
    else:
        params = dbt_connection_params(db_url)
    output = {
        "type": "postgres",
        "host": params["host"],
        "port": int(params["port"]),
        "user": params["user"],
        "password": params["password"],
        "dbname": params["dbname"],
        "schema": TARGET_SCHEMA,
        "threads": 2,
        "connect_timeout": 10,
    }
    # JSON is valid YAML, and json.dumps quotes every string safely.
    profile = {PROFILE_NAME: {"target": TARGET_NAME, "outputs": {TARGET_NAME: output}}}
    return json.dumps(profile, indent=2) + "\n"


@contextlib.contextmanager
def dbt_workspace(db_url: str | None, *, keep: bool = False) -> Iterator[DbtWorkspace]:
    """Yield private profiles and target folders, removed afterwards.

    The profile may hold the warehouse password, so its folder is created
    with mode 0700 by `tempfile.mkdtemp` and deleted when the block ends.
    """
    root = Path(tempfile.mkdtemp(prefix="halo-dbt-"))
    try:
        profiles_dir = root / "profiles"
        profiles_dir.mkdir()
        profiles_file = profiles_dir / "profiles.yml"
        profiles_file.write_text(profile_yaml(db_url), encoding="utf-8")
        profiles_file.chmod(0o600)
        yield DbtWorkspace(profiles_dir=profiles_dir, target_path=root / "target")
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def project_fingerprint(project_dir: Path = PROJECT_DIR) -> str:
    """Hash the files that define the dbt project, to key cached manifests."""
    digest = hashlib.sha256()
    digest.update(importlib.metadata.version("dbt-core").encode())
    files = sorted(
        {path for pattern in _PROJECT_GLOBS for path in project_dir.glob(pattern) if path.is_file()}
    )
    for path in files:
        digest.update(os.fspath(path.relative_to(project_dir)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def dbt_vars(as_of: str | None) -> str:
    """Return the `--vars` argument: the as_of instant when one is given."""
    return json.dumps({"as_of": as_of} if as_of else {})
