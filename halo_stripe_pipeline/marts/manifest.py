"""The parsed dbt manifest, prepared once per version of the project files.

`dbt parse` takes seconds, so its manifest is cached under
`dbt_project/target/manifests/<hash of the project files>/` and reused by
every process until a model, macro or test changes.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from halo_stripe_pipeline.marts.project import (
    PROJECT_DIR,
    dbt_workspace,
    project_fingerprint,
)

log = logging.getLogger(__name__)


class ManifestError(RuntimeError):
    """`dbt parse` failed, so the dbt assets cannot be defined."""


def manifest_cache_dir(project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / "target" / "manifests"


def prepared_manifest(project_dir: Path = PROJECT_DIR) -> Path:
    """Return the path of an up-to-date manifest.json, parsing when needed."""
    fingerprint = project_fingerprint(project_dir)
    cached = manifest_cache_dir(project_dir) / fingerprint / "manifest.json"
    if cached.exists():
        return cached
    log.info("parsing the dbt project %s (manifest %s)", project_dir, fingerprint)
    with dbt_workspace(None) as workspace:
        invocation = workspace.resource(project_dir).cli(
            ["parse"], raise_on_error=False, target_path=workspace.target_path
        )
        invocation.wait()
        parsed = workspace.target_path / "manifest.json"
        if not invocation.is_successful() or not parsed.exists():
            raise ManifestError(
                f"`dbt parse` failed in {project_dir}: run `dbt parse` there to see the error"
            )
        cached.parent.mkdir(parents=True, exist_ok=True)
        # Copy then rename, so a concurrent reader never sees half a file.
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(parsed, partial)
        os.replace(partial, cached)
    _remove_other_manifests(cached.parent)
    return cached


def _remove_other_manifests(current: Path) -> None:
    """Delete manifests of earlier versions of the project files."""
    for folder in current.parent.iterdir():
        if folder.is_dir() and folder != current:
            shutil.rmtree(folder, ignore_errors=True)
