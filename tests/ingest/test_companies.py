"""`halo-stripe companies import`: traits, updates and whole-file rejection."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from halo_stripe_pipeline.cli import main
from halo_stripe_pipeline.companies import CompaniesFileError, import_companies, parse_number


@pytest.fixture
def prefix() -> str:
    """A company id prefix of its own; the session database is shared."""
    return f"co{uuid.uuid4().hex[:8]}_"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "companies.csv"
    path.write_text(text, encoding="utf-8")
    return path


def _company(db: psycopg.Connection, company_id: str) -> tuple | None:
    return db.execute(
        "select workspace_id, name, domain, email, stripe_customer_id, traits"
        " from halo.companies where id = %s",
        (company_id,),
    ).fetchone()


def _count(db: psycopg.Connection, prefix: str) -> int:
    row = db.execute(
        "select count(*) from halo.companies where id like %s", (prefix + "%",)
    ).fetchone()
    return row[0] if row else 0


def test_parse_number_cases() -> None:
    assert parse_number("42") == 42
    assert parse_number("-3") == -3
    assert parse_number("1299.50") == Decimal("1299.50")
    assert parse_number("1e3") == Decimal("1e3")
    assert parse_number("02139") is None
    assert parse_number("12,5") is None
    assert parse_number("1.2.3") is None
    assert parse_number("nan") is None
    assert parse_number("") is None


def test_import_stores_columns_and_traits(
    db: psycopg.Connection, tmp_path: Path, prefix: str
) -> None:
    path = _write(
        tmp_path,
        "id,name,domain,email,stripe_customer_id,workspace_id,mrr,plan,zip,seats:number\n"
        f"{prefix}1,Acme,ACME.com,ops@acme.com,cus_A1,,1299.50,pro,02139,12\n"
        f"{prefix}2,Globex,globex.io,,,eu,,basic,,\n",
    )

    result = import_companies(db, path)

    assert (result.inserted, result.updated) == (2, 0)
    workspace, name, domain, email, customer, traits = _company(db, f"{prefix}1")
    assert (workspace, name, domain, email, customer) == (
        "default", "Acme", "acme.com", "ops@acme.com", "cus_A1",
    )
    assert traits == {"mrr": Decimal("1299.50"), "plan": "pro", "zip": "02139", "seats": 12}
    exact = db.execute(
        "select traits ->> 'mrr', jsonb_typeof(traits -> 'mrr') from halo.companies where id = %s",
        (f"{prefix}1",),
    ).fetchone()
    assert exact == ("1299.50", "number")
    assert _company(db, f"{prefix}2")[0] == "eu"
    assert _company(db, f"{prefix}2")[5] == {"plan": "basic"}


def test_reimport_updates(db: psycopg.Connection, tmp_path: Path, prefix: str) -> None:
    import_companies(db, _write(tmp_path, f"id,name,mrr\n{prefix}1,Acme,100\n"))

    result = import_companies(
        db, _write(tmp_path, f"id,name,mrr\n{prefix}1,Acme Corp,250\n{prefix}2,Initech,\n")
    )

    assert (result.inserted, result.updated) == (1, 1)
    assert _company(db, f"{prefix}1")[1] == "Acme Corp"
    assert _company(db, f"{prefix}1")[5] == {"mrr": 250}
    assert _count(db, prefix) == 2


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ("{p}1,Acme,10\n,Nameless,5\n", "row 3: missing id"),
        ("{p}1,Acme,10\n{p}1,Acme again,5\n", "row 3: duplicate id `{p}1` (first on row 2)"),
        ("{p}1,Acme,10\n{p}2,Globex,12.5.1\n", "row 3: malformed number `12.5.1` in column `mrr`"),
        ("{p}1,Acme,10\n{p}2,Globex,$40\n", "row 3: malformed number `$40` in column `mrr`"),
        ("{p}1,Acme,10,extra\n", "row 2: more fields than the header has columns"),
    ],
    ids=["missing-id", "duplicate-id", "malformed-number", "currency-sign", "extra-field"],
)
def test_bad_file_imports_nothing(
    db: psycopg.Connection, tmp_path: Path, prefix: str, rows: str, reason: str
) -> None:
    path = _write(tmp_path, "id,name,mrr\n" + rows.format(p=prefix))

    with pytest.raises(CompaniesFileError) as rejected:
        import_companies(db, path)

    assert reason.format(p=prefix) in str(rejected.value)
    assert "nothing imported" in str(rejected.value)
    assert _count(db, prefix) == 0


def test_declared_numeric_column_checked(
    db: psycopg.Connection, tmp_path: Path, prefix: str
) -> None:
    path = _write(tmp_path, f"id,seats:number\n{prefix}1,twelve\n")

    with pytest.raises(CompaniesFileError, match="malformed number `twelve` in column `seats:number`"):
        import_companies(db, path)


def test_header_without_id_rejected(db: psycopg.Connection, tmp_path: Path) -> None:
    with pytest.raises(CompaniesFileError, match="no `id` column"):
        import_companies(db, _write(tmp_path, "name,email\nAcme,a@acme.com\n"))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("id,name,id", "column `id` appears twice in the header"),
        ("id,seats:number,seats", "columns `seats:number` and `seats` both fill trait `seats`"),
    ],
)
def test_repeated_header_column_rejected(
    db: psycopg.Connection, tmp_path: Path, prefix: str, header: str, message: str
) -> None:
    path = _write(tmp_path, f"{header}\n{prefix}1,3,{prefix}2\n")

    with pytest.raises(CompaniesFileError, match=message):
        import_companies(db, path)
    assert _count(db, prefix) == 0


def test_file_not_utf8_rejected(db: psycopg.Connection, tmp_path: Path, prefix: str) -> None:
    path = tmp_path / "companies.csv"
    path.write_bytes(f"id,name\n{prefix}1,Caf\xe9\n".encode("latin-1"))

    with pytest.raises(CompaniesFileError, match="not UTF-8"):
        import_companies(db, path)
    assert _count(db, prefix) == 0


def test_cli_bad_file_one_line_error(
    warehouse_url: str,
    db: psycopg.Connection,
    tmp_path: Path,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _write(tmp_path, f"id,name,mrr\n{prefix}1,Acme,ten\n")

    exit_code = main(["companies", "import", str(path)])

    error = capsys.readouterr().err.strip()
    assert exit_code != 0
    assert len(error.splitlines()) == 1
    assert "row 2: malformed number `ten` in column `mrr`" in error
    assert _count(db, prefix) == 0


def test_cli_import_reports_counts(
    warehouse_url: str, tmp_path: Path, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, f"id,name\n{prefix}1,Acme\n{prefix}2,Globex\n")

    exit_code = main(["companies", "import", str(path)])

    assert exit_code == 0
    assert "imported 2 companies (2 new, 0 updated)" in capsys.readouterr().out
