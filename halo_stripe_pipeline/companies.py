"""Import Halo's company records from CSV into `halo.companies`.

Columns `id`, `name`, `domain`, `email`, `stripe_customer_id` and
`workspace_id` fill the table's columns; every other column becomes a key of
the `traits` jsonb. A trait value written as a plain decimal number is
stored as an exact JSON number, without float rounding. A value with a
leading zero, such as the postal code `02139`, stays text. The `mrr` trait, and any
column whose header ends in `:number` (the suffix is dropped from the key),
must be a number or empty. The file is validated as a whole and written in
one transaction: one bad row rejects it and nothing is imported.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import psycopg

from halo_stripe_pipeline.settings import DEFAULT_WORKSPACE

COLUMNS = ("id", "name", "domain", "email", "stripe_customer_id", "workspace_id")
NUMERIC_TRAITS = frozenset({"mrr"})
NUMERIC_SUFFIX = ":number"
MAX_REPORTED_ERRORS = 20

_NUMBER = re.compile(r"^[+-]?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$|^[+-]?\.\d+$")


class CompaniesFileError(ValueError):
    """The CSV was rejected; the message lists each bad row and its reason."""


@dataclass(frozen=True)
class CompanyRow:
    id: str
    workspace_id: str
    name: str | None
    domain: str | None
    email: str | None
    stripe_customer_id: str | None
    traits_json: str


@dataclass(frozen=True)
class ImportResult:
    inserted: int
    updated: int

    @property
    def total(self) -> int:
        return self.inserted + self.updated


def parse_number(text: str) -> int | Decimal | None:
    """Return `text` as an int or exact Decimal, or None when it is not a plain number."""
    value = text.strip()
    if not _NUMBER.match(value):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    if number == number.to_integral_value() and "." not in value and "e" not in value.lower():
        return int(number)
    return number


def _traits_json(traits: dict[str, object]) -> str:
    """Serialise a flat traits dict, writing Decimals as exact JSON numbers."""
    members = []
    for key, value in traits.items():
        encoded = str(value) if isinstance(value, Decimal) else json.dumps(value)
        members.append(f"{json.dumps(key)}:{encoded}")
    return "{" + ",".join(members) + "}"


def _optional(value: str | None) -> str | None:
    cleaned = (value or "").strip()
    return cleaned or None


def _trait_columns(header: list[str]) -> dict[str, tuple[str, bool]]:
    """Map each trait column to (trait key, must be numeric)."""
    columns = {}
    for column in header:
        if column in COLUMNS:
            continue
        if column.endswith(NUMERIC_SUFFIX):
            columns[column] = (column[: -len(NUMERIC_SUFFIX)], True)
        else:
            columns[column] = (column, column in NUMERIC_TRAITS)
    return columns


def _parse_row(
    line: int, record: dict[str, str | None], trait_columns: dict[str, tuple[str, bool]]
) -> tuple[CompanyRow | None, list[str]]:
    errors = []
    company_id = _optional(record.get("id"))
    if company_id is None:
        errors.append(f"row {line}: missing id")
    if None in record:
        errors.append(f"row {line}: more fields than the header has columns")
    traits: dict[str, object] = {}
    for column, (key, numeric) in trait_columns.items():
        text = _optional(record.get(column))
        if text is None:
            continue
        number = parse_number(text)
        if numeric and number is None:
            errors.append(f"row {line}: malformed number `{text}` in column `{column}`")
            continue
        traits[key] = number if number is not None else text
    if errors or company_id is None:
        return None, errors
    domain = _optional(record.get("domain"))
    row = CompanyRow(
        id=company_id,
        workspace_id=_optional(record.get("workspace_id")) or DEFAULT_WORKSPACE,
        name=_optional(record.get("name")),
        domain=domain.lower() if domain else None,
        email=_optional(record.get("email")),
        stripe_customer_id=_optional(record.get("stripe_customer_id")),
        traits_json=_traits_json(traits),
    )
    return row, []


def _check_header(path: Path, header: list[str]) -> dict[str, tuple[str, bool]]:
    """Return the trait columns; raise CompaniesFileError for an ambiguous header.

    A repeated column would silently keep only its last cell, and so would
    two columns that fill one trait key (`seats` and `seats:number`).
    """
    if "id" not in header:
        raise CompaniesFileError(f"{path}: the header has no `id` column")
    for column in header:
        if header.count(column) > 1:
            raise CompaniesFileError(
                f"{path}: column `{column}` appears twice in the header; keep one"
            )
    trait_columns = _trait_columns(header)
    column_of_key: dict[str, str] = {}
    for column, (key, _numeric) in trait_columns.items():
        if key in column_of_key:
            raise CompaniesFileError(
                f"{path}: columns `{column_of_key[key]}` and `{column}` both fill "
                f"trait `{key}`; keep one"
            )
        column_of_key[key] = column
    return trait_columns


def read_companies(path: Path) -> list[CompanyRow]:
    """Parse and validate the whole file; raise CompaniesFileError listing bad rows."""
    try:
        return _read_companies(path)
    except UnicodeDecodeError:
        raise CompaniesFileError(
            f"{path}: not UTF-8 text; save the file as CSV UTF-8"
        ) from None


def _read_companies(path: Path) -> list[CompanyRow]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [column.strip() for column in reader.fieldnames or []]
        trait_columns = _check_header(path, header)
        reader.fieldnames = header
        rows: list[CompanyRow] = []
        errors: list[str] = []
        first_line_of: dict[str, int] = {}
        for record in reader:
            line = reader.line_num
            row, row_errors = _parse_row(line, record, trait_columns)
            errors.extend(row_errors)
            if row is None:
                continue
            if row.id in first_line_of:
                errors.append(
                    f"row {line}: duplicate id `{row.id}` (first on row {first_line_of[row.id]})"
                )
                continue
            first_line_of[row.id] = line
            rows.append(row)
    if errors:
        reported = errors[:MAX_REPORTED_ERRORS]
        more = len(errors) - len(reported)
        suffix = f"; and {more} more" if more else ""
        raise CompaniesFileError(
            f"{path} rejected, nothing imported: " + "; ".join(reported) + suffix
        )
    return rows


def import_companies(conn: psycopg.Connection, path: Path) -> ImportResult:
    """Insert or update every company of the CSV at `path` in one transaction.

    A company already stored is replaced by the file's version (traits
    included); companies absent from the file are left as they are. Rows go
    through COPY into a temporary table and one upsert.
    """
    rows = read_companies(path)
    with conn.transaction():
        conn.execute(
            """
            create temp table _companies_import (
                id text, workspace_id text, name text, domain text, email text,
                stripe_customer_id text, traits jsonb
            ) on commit drop
            """
        )
        copy_sql = (
            "copy _companies_import"
            " (id, workspace_id, name, domain, email, stripe_customer_id, traits) from stdin"
        )
        with conn.cursor().copy(copy_sql) as copy:
            for row in rows:
                copy.write_row((
                    row.id, row.workspace_id, row.name, row.domain, row.email,
                    row.stripe_customer_id, row.traits_json,
                ))
        outcomes = conn.execute(
            """
            insert into halo.companies as c
                (id, workspace_id, name, domain, email, stripe_customer_id, traits, imported_at)
            select id, workspace_id, name, domain, email, stripe_customer_id, traits, now()
            from _companies_import
            on conflict (id) do update set
                workspace_id = excluded.workspace_id, name = excluded.name,
                domain = excluded.domain, email = excluded.email,
                stripe_customer_id = excluded.stripe_customer_id,
                traits = excluded.traits, imported_at = excluded.imported_at
            returning (xmax = 0) as inserted
            """
        ).fetchall()
    inserted = sum(1 for outcome in outcomes if outcome[0])
    return ImportResult(inserted=inserted, updated=len(outcomes) - inserted)
