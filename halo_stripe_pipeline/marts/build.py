"""Build the marts: `dbt build` (models, data tests and unit tests) on a warehouse."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from halo_stripe_pipeline.marts.project import dbt_vars, dbt_workspace

log = logging.getLogger(__name__)

FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})


class MartsBuildError(RuntimeError):
    """`dbt build` failed; the message names each failing node."""

    def __init__(self, message: str, failures: list[NodeResult]) -> None:
        super().__init__(message)
        self.failures = failures


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    status: str
    message: str | None


@dataclass(frozen=True)
class MartsBuildResult:
    as_of: str
    nodes: list[NodeResult] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Return how many nodes ended in each status."""
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.status] = counts.get(node.status, 0) + 1
        return counts


def normalize_as_of(as_of: datetime | str | None) -> str:
    """Return `as_of` as an ISO 8601 UTC string; now when it is None.

    A naive datetime or a string without an offset is read as UTC.
    """
    if as_of is None:
        moment = datetime.now(timezone.utc)
    elif isinstance(as_of, datetime):
        moment = as_of
    else:
        text = as_of.strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as error:
            raise ValueError(
                f"invalid as_of `{as_of}`: expected an ISO 8601 instant such as"
                " 2025-07-15T00:00:00Z"
            ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def build_args(
    *,
    as_of: str,
    select: str | list[str] | None = None,
    exclude: str | list[str] | None = None,
) -> list[str]:
    """Return the `dbt build` arguments for `as_of` and optional selections."""
    args = ["build", "--vars", dbt_vars(as_of)]
    # One space-separated value per flag: dagster-dbt moves extra list items
    # ahead of the other flags, which breaks the command.
    if select:
        args += ["--select", " ".join(_as_list(select))]
    if exclude:
        args += ["--exclude", " ".join(_as_list(exclude))]
    return args


def _as_list(selection: str | list[str]) -> list[str]:
    return [selection] if isinstance(selection, str) else list(selection)


def node_results(run_results: dict[str, Any]) -> list[NodeResult]:
    """Return one NodeResult per node in a dbt `run_results.json`."""
    return [
        NodeResult(
            unique_id=entry["unique_id"],
            status=str(entry.get("status")),
            message=entry.get("message"),
        )
        for entry in run_results.get("results", [])
    ]


def failure_message(failures: list[NodeResult]) -> str:
    """Describe failing nodes, one per line, for an exception message."""
    lines = [f"dbt build failed on {len(failures)} node(s):"]
    for node in failures:
        detail = (node.message or "").strip().splitlines()
        lines.append(f"  `{node.unique_id}` {node.status}: {detail[0] if detail else ''}")
    return "\n".join(lines)


def build_marts(
    db_url: str,
    *,
    as_of: datetime | str | None = None,
    select: str | list[str] | None = None,
    exclude: str | list[str] | None = None,
) -> MartsBuildResult:
    """Run `dbt build` against the warehouse at `db_url`.

    `as_of` sets the instant every mart describes (default: now, UTC);
    `select` and `exclude` narrow the build with dbt selection syntax
    (`exclude="resource_type:unit_test"` skips the unit tests). Raises
    MartsBuildError naming each failing model, test or unit test.
    """
    as_of_text = normalize_as_of(as_of)
    args = build_args(as_of=as_of_text, select=select, exclude=exclude)
    log.info("building the marts as of %s (select=%s)", as_of_text, select or "all")
    with dbt_workspace(db_url) as workspace:
        invocation = workspace.resource().cli(
            args, raise_on_error=False, target_path=workspace.target_path
        )
        invocation.wait()
        nodes = _read_nodes(invocation)
        failures = [node for node in nodes if node.status in FAILED_STATUSES]
        if failures or not invocation.is_successful():
            if not failures:
                failures = [NodeResult("dbt", "error", _last_error(invocation))]
            raise MartsBuildError(failure_message(failures), failures)
    result = MartsBuildResult(as_of=as_of_text, nodes=nodes)
    log.info("built the marts: %s", ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items())))
    return result


def _read_nodes(invocation: Any) -> list[NodeResult]:
    try:
        run_results = invocation.get_artifact("run_results.json")
    except FileNotFoundError:
        return []
    return node_results(run_results)


def _last_error(invocation: Any) -> str:
    """Return dbt's own error for a failure that names no node (bad profile, parse error)."""
    error = invocation.get_error()
    return str(error) if error else "dbt exited with an error before building any node"
