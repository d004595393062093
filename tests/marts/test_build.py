"""build_marts and its helpers: arguments, profiles, failures."""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg
import pytest

from halo_stripe_pipeline.marts.build import (
    MartsBuildError,
    NodeResult,
    build_args,
    build_marts,
    failure_message,
    normalize_as_of,
)
from halo_stripe_pipeline.marts.project import (
    PROJECT_DIR,
    dbt_workspace,
    profile_yaml,
)


def test_as_of_naive_is_utc() -> None:
    assert normalize_as_of("2025-07-15T00:00:00") == "2025-07-15T00:00:00Z"


def test_as_of_offset_converted() -> None:
    assert normalize_as_of("2025-07-15T02:00:00+02:00") == "2025-07-15T00:00:00Z"


def test_as_of_invalid_rejected() -> None:
    with pytest.raises(ValueError, match="invalid as_of `yesterday`"):
        normalize_as_of("yesterday")


def test_build_args_carry_vars_and_selection() -> None:
    args = build_args(as_of="2025-07-15T00:00:00Z", select="+company_billing")
    assert args == [
        "build",
        "--vars",
        '{"as_of": "2025-07-15T00:00:00Z"}',
        "--select",
        "+company_billing",
    ]


def test_failure_message_names_nodes() -> None:
    message = failure_message(
        [NodeResult("model.halo_stripe.company_billing", "error", "relation missing\nmore")]
    )
    assert "`model.halo_stripe.company_billing` error: relation missing" in message


def test_socket_profile_uses_directory_host() -> None:
    text = profile_yaml("postgresql://postgres@/halo?host=/tmp/pg%20socket&port=5433")
    assert '"host": "/tmp/pg socket"' in text
    assert '"port": 5433' in text
    assert '"dbname": "halo"' in text


def test_workspace_is_private_and_removed() -> None:
    with dbt_workspace("postgresql://user:secret@127.0.0.1:5432/db") as workspace:
        profile = workspace.profiles_dir / "profiles.yml"
        assert stat.S_IMODE(profile.stat().st_mode) == 0o600
        root = workspace.profiles_dir.parent
    assert not root.exists()


def test_each_workspace_has_own_target() -> None:
    with dbt_workspace(None) as first, dbt_workspace(None) as second:
        assert first.target_path != second.target_path
        assert PROJECT_DIR not in first.target_path.parents


def test_project_needs_no_packages() -> None:
    assert not (PROJECT_DIR / "packages.yml").exists()
    assert not (PROJECT_DIR / "dependencies.yml").exists()


def test_failing_test_names_node(db: psycopg.Connection, warehouse_url: str) -> None:
    db.execute(
        "insert into halo.integration_settings (account_id, mrr_mode)"
        " values ('acct_marts_invalid', 'weekly_guess')"
    )
    try:
        with pytest.raises(MartsBuildError) as raised:
            build_marts(warehouse_url, select="stg_halo__integration_settings")
    finally:
        db.execute("delete from halo.integration_settings where account_id = 'acct_marts_invalid'")
    assert "accepted_values_stg_halo__integration_settings_mrr_mode" in str(raised.value)
    assert raised.value.failures[0].status == "fail"


def test_no_credentials_in_project() -> None:
    assert not list(Path(PROJECT_DIR).glob("**/profiles.yml"))
