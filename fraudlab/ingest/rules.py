"""The validation rules both ingest engines share: typed values and a reason for every rejected row, as SQL."""
from __future__ import annotations

import re

from fraudlab.errors import IngestError
from fraudlab.ingest.records import (
    AMOUNT_LIMIT,
    EARLIEST_TS,
    EXTRA_NUMBER_LIMIT,
    FUTURE_TOLERANCE_DAYS,
    KEY_COLUMNS,
    MAX_FIELD_BYTES,
    NULL_WORDS,
    TARGETS,
    TIME_FORMATS,
    Staged,
)
from fraudlab.privacy import is_card_column, mask_card_sql
from fraudlab.schema import ColumnMapping
from fraudlab.workspace import quote_ident


def text_expr(col: str, sqltype: str = "VARCHAR") -> str:
    """A column as trimmed text, with empty and NA-like values as NULL."""
    q = quote_ident(col)
    if value_kind(sqltype) != "text":
        return f"CAST({q} AS VARCHAR)"
    # Most values need nothing: all ASCII (strlen = length), no leading space or control byte (>= '!'), no trailing
    # space, and too long or wrongly started to be an NA word. They are returned as they are, with no trim() copy
    # (25x cheaper per value; the typing was most of the write pass). trim() removes only ' ' among ASCII
    # characters (and the Unicode spaces, which the ASCII test sends to the exact path). The exact path is bound
    # through a one-element list so DuckDB does not hoist its trim() to every row.
    longest = max(len(w) for w in NULL_WORDS)
    starts = sorted({c for w in NULL_WORDS if w for c in (w[0], w[0].upper())})
    na_start = " OR ".join(f"prefix({q}, '{c}')" for c in starts)
    plain = (f"{q} >= '!' AND NOT suffix({q}, ' ') AND strlen({q}) = length({q}) "
             f"AND (strlen({q}) > {longest} OR NOT ({na_start}))")
    t = "__txt"
    exact = (f"CASE WHEN strlen({t}) > {longest} THEN {t} WHEN {one_of(f'lower({t})', NULL_WORDS)} THEN NULL "
             f"ELSE {t} END")
    return (f"(CASE WHEN {plain} THEN {q} WHEN {q} IS NULL THEN NULL "
            f"ELSE list_transform([trim({q})], lambda {t}: {exact})[1] END)")


def one_of(expr: str, words: tuple[str, ...]) -> str:
    """SQL: `expr` equals one of the (quote-free) words, as ORed equalities.

    Not `IN (...)`: DuckDB turns every IN list into a mark join over the whole relation, one join per column
    (41 joins on a 19-column load, half its time), where equalities stay a cheap per-row expression.

    >>> one_of("x", ("a", "b"))
    "(x = 'a' OR x = 'b')"
    """
    return "(" + " OR ".join(f"{expr} = '{w}'" for w in words) + ")"


def _double(col: str, sqltype: str) -> str:
    kind = value_kind(sqltype)
    if kind == "number":
        return f"CAST({quote_ident(col)} AS DOUBLE)"
    if kind == "bool":
        return f"CAST(CAST({quote_ident(col)} AS INTEGER) AS DOUBLE)"
    return f"TRY_CAST({text_expr(col, sqltype)} AS DOUBLE)"


def money_expr(col: str, sqltype: str) -> str:
    """An amount as DOUBLE: plain numbers, and text with currency signs, thousands separators or a decimal comma
    (`$1,000.50`, `1.000,50 €`, `1 000,50`, `12,5`). One separator followed by exactly three digits (`1,000`,
    `1.000 €`) is ambiguous and reads as NULL, so the row is quarantined with :func:`ambiguous_money_sql`'s reason.
    """
    if value_kind(sqltype) != "text":
        return _double(col, sqltype)
    t = text_expr(col, sqltype)
    c = "__digits"  # the lambda's parameter: _money_digits(t) appears once, so it runs only where TRY_CAST failed
    sign = f"(CASE WHEN {t} LIKE '(%)' THEN -1 ELSE 1 END)"
    parsed = (f"CASE WHEN regexp_full_match({c}, '-?[0-9]{{1,3}}[,.][0-9]{{3}}') THEN NULL "
              f"WHEN regexp_full_match({c}, '-?[0-9]{{1,3}}(,[0-9]{{3}})+([.][0-9]+)?') "
              f"THEN TRY_CAST(replace({c}, ',', '') AS DOUBLE) "
              f"WHEN regexp_full_match({c}, '-?[0-9]{{1,3}}([.][0-9]{{3}})+(,[0-9]+)?') "
              f"THEN TRY_CAST(replace(replace({c}, '.', ''), ',', '.') AS DOUBLE) "
              f"WHEN regexp_full_match({c}, '-?[0-9]+,[0-9]+') THEN TRY_CAST(replace({c}, ',', '.') AS DOUBLE) "
              f"WHEN regexp_full_match({c}, '-?[0-9]+([.][0-9]+)?') THEN TRY_CAST({c} AS DOUBLE) END")
    # Written five times in `parsed`, the digits would be hoisted by DuckDB's common-subexpression pass out of the
    # COALESCE and computed (two regexp_replace) for every row; bound once through a one-element list instead.
    return (f"COALESCE(TRY_CAST({t} AS DOUBLE), "
            f"{sign} * list_transform([{_money_digits(t)}], lambda {c}: {parsed})[1])")


def _money_digits(text_sql: str) -> str:
    """The text without currency signs, a leading or trailing currency code, spaces and apostrophes; anything else
    (a stray letter) is kept, so the value stays unparsable."""
    codes = f"regexp_replace(trim({text_sql}), '^[A-Z]{{3}}[ ]*|[ ]*[A-Z]{{3}}$', '', 'g')"
    return f"regexp_replace({codes}, '[()\\s\u00a0\u202f\u2009''’$€£¥₹₽₩₺₪¢]', '', 'g')"


def ambiguous_money_sql(raw: str) -> str:
    """SQL: true when a raw amount text is ambiguous (one separator followed by exactly three digits)."""
    return f"regexp_full_match({_money_digits(raw)}, '-?[0-9]{{1,3}}[,.][0-9]{{3}}')"


def _time(col: str, sqltype: str, mapping: ColumnMapping | None) -> str:
    """ts as a UTC TIMESTAMP: numeric offsets from the mapping's origin, typed times, or many text formats."""
    kind, q = value_kind(sqltype), quote_ident(col)
    if mapping is not None and mapping.ts_unit_seconds:
        micros = f"CAST({_double(col, sqltype)} * {float(mapping.ts_unit_seconds) * 1e6!r} AS BIGINT)"
        return f"(TIMESTAMP '{_safe_ts(mapping.ts_origin)}' + to_microseconds({micros}))"
    if kind == "time":
        return f"CAST({q} AS TIMESTAMP)"
    if kind == "timetz":
        return f"CAST({q} AT TIME ZONE 'UTC' AS TIMESTAMP)"
    text = text_expr(col, sqltype)
    formats = ", ".join(f"'{f}'" for f in TIME_FORMATS)
    # 'YYYY-MM-DD HH:MM:SS' has no room for an offset: read as a plain TIMESTAMP, without the time zone library
    plain = f"CASE WHEN {text} LIKE '____-__-__ __:__:__' OR {text} LIKE '____-__-__T__:__:__' " \
            f"THEN TRY_CAST({text} AS TIMESTAMP) END"
    return (f"COALESCE({plain}, CAST(TRY_CAST({text} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP), "
            f"TRY_STRPTIME({text}, [{formats}]))")


def _safe_ts(text: str) -> str:
    if not re.fullmatch(r"[0-9:\- T.]+", str(text)):
        raise IngestError(f"time origin {text!r} is not a timestamp like 2026-01-01 00:00:00")
    return str(text)


TRUE_WORDS = ("1", "1.0", "true", "t", "yes", "y", "fraud")
FALSE_WORDS = ("0", "0.0", "false", "f", "no", "n", "legit", "legitimate")
FAST_TRUE, FAST_FALSE = ("True", "1", "true"), ("False", "0", "false")  # each reads the same way as its word above


def _bool(col: str, sqltype: str) -> str:
    kind = value_kind(sqltype)
    if kind == "bool":
        return quote_ident(col)
    if kind == "number":
        return (f"CASE WHEN {quote_ident(col)} = 1 THEN TRUE WHEN {quote_ident(col)} = 0 THEN FALSE END")
    t = f"lower({text_expr(col, sqltype)})"
    slow = f"CASE WHEN {one_of(t, TRUE_WORDS)} THEN TRUE WHEN {one_of(t, FALSE_WORDS)} THEN FALSE END"
    # the usual spellings, compared as they are (half the cost per value; the rest go through trim and lower)
    q = quote_ident(col)
    return (f"CASE WHEN {one_of(q, FAST_FALSE)} THEN FALSE WHEN {one_of(q, FAST_TRUE)} THEN TRUE "
            f"ELSE {slow} END")


def _typed_expr(target: str, col: str, sqltype: str, mapping: ColumnMapping) -> str:
    kind = TARGETS[target]
    if target == "ts":
        return _time(col, sqltype, mapping)
    if target == "label_ts":
        return _time(col, sqltype, None)
    if target == "amount":
        return money_expr(col, sqltype)
    if kind == "DOUBLE":
        return _double(col, sqltype)
    if kind == "BOOLEAN":
        return _bool(col, sqltype)
    return text_expr(col, sqltype)


def select_typed(staged: Staged, mapping: ColumnMapping, extras: dict[str, tuple[str, str]],
                 side: dict[str, str] | None = None) -> list[str]:
    """Select-list items: typed canonical columns as __t_<name>, their raw value as __r_<name> (text when the
    source is text, else as typed), extras as __x_i;
    kept-aside columns as stored (text, card numbers masked) as __s_i and as read for the content id as __sx_i."""
    items = []
    for target in TARGETS:
        col = mapping.columns.get(target)
        if col is None:
            items.append(f"CAST(NULL AS {TARGETS[target]}) AS __t_{target}")
            continue
        items.append(f"{_typed_expr(target, col, staged.types[col], mapping)} AS __t_{target}")
        if target in KEY_COLUMNS or TARGETS[target] != "VARCHAR":
            # a typed source stays typed: its text is made (in row_reasons) only for the rows a reason quotes
            raw = text_expr(col) if value_kind(staged.types[col]) == "text" else quote_ident(col)
            items.append(f"{raw} AS __r_{target}")
    for k, (col, (_name, sqltype)) in enumerate(extras.items()):
        items.append(f"{_extra_value(col, staged.types[col], sqltype)} AS __x_{k}")
        if sqltype == "DOUBLE" and value_kind(staged.types[col]) == "text":
            items.append(f"{text_expr(col)} AS __xr_{k}")
    for k, (col, sqltype) in enumerate((side or {}).items()):
        items.append(f"{_extra_value(col, staged.types[col], sqltype)} AS __sx_{k}")
        stored = _extra_value(col, staged.types[col], "VARCHAR")
        items.append(f"{mask_card_sql(stored) if is_card_column(col) else stored} AS __s_{k}")
    return items


def _extra_value(col: str, srctype: str, sqltype: str) -> str:
    """An unmapped column's value: a DOUBLE when planned as a number, else its text as read."""
    if sqltype == "DOUBLE":
        return _double(col, srctype)
    return quote_ident(col) if value_kind(srctype) == "text" else text_expr(col, srctype)


# Columns that do not make a transaction what it is: a later file may correct its label without it becoming new.
NOT_CONTENT = ("transaction_id", "is_fraud", "label_ts")


def with_generated_ids(typed_sql: str, mapping: ColumnMapping, extras: dict[str, tuple[str, str]],
                       side: dict[str, str] | None = None) -> str:
    """SQL over `typed_sql` (rows of :func:`select_typed`) that fills a missing transaction_id from the row's content.

    The id is a hash of the typed values (canonical columns as loaded, then the unmapped columns by source name,
    whether added to `transactions` or kept aside, so the choice does not change the id) and the
    row's occurrence number among identical rows of its file, so the same rows re-saved (other line ends, a blank
    line, recompressed, reordered) get the same ids and a reload adds nothing.
    """
    if "transaction_id" in mapping.columns:
        return typed_sql
    fields = [f"{t} := __t_{t}" for t in TARGETS if t not in NOT_CONTENT]
    unmapped = [(col, f"__x_{k}") for k, col in enumerate(extras)]
    unmapped += [(col, f"__sx_{k}") for k, col in enumerate(side or {})]
    fields += [f"{quote_ident('x_' + str(col))} := {ref}" for col, ref in sorted(unmapped)]
    content = f"sha256(to_json(struct_pack({', '.join(fields)})))"
    return (f"(SELECT * REPLACE (left(__h, 20) || '-' || CAST(row_number() OVER (PARTITION BY __fidx, __h "
            f"ORDER BY __row) AS VARCHAR) AS __t_transaction_id) FROM (SELECT *, {content} AS __h FROM {typed_sql}))")


def row_reasons(mapping: ColumnMapping, extras: dict[str, tuple[str, str]], staged: Staged, now: str,
                nul_checks: bool = True) -> list[str]:
    """One SQL CASE per check; each yields a reason text or NULL.

    `nul_checks=False` leaves out the NUL-byte test of every text value (a third of the checks' cost on a CSV), for
    files whose bytes are known to hold no NUL.
    """
    m = mapping.columns
    reasons = [
        "CASE WHEN __r_ts IS NULL THEN 'missing time' WHEN __t_ts IS NULL THEN "
        "'unparsable time: ' || left(CAST(__r_ts AS VARCHAR), 60) "
        f"WHEN __t_ts > TIMESTAMP '{now}' + INTERVAL {FUTURE_TOLERANCE_DAYS} DAY THEN "
        "'time in the future: ' || CAST(__t_ts AS VARCHAR) "
        f"WHEN __t_ts < TIMESTAMP '{EARLIEST_TS}' THEN 'time before {EARLIEST_TS}: ' || CAST(__t_ts AS VARCHAR) END",
        "CASE WHEN __r_amount IS NULL THEN 'missing amount' WHEN __t_amount IS NULL AND "
        f"{ambiguous_money_sql('CAST(__r_amount AS VARCHAR)')} THEN 'ambiguous amount (thousands separator or decimal comma?): ' "
        "|| left(CAST(__r_amount AS VARCHAR), 60) WHEN __t_amount IS NULL THEN "
        "'unparsable amount: ' || left(CAST(__r_amount AS VARCHAR), 60) WHEN NOT isfinite(__t_amount) THEN "
        "'amount not finite: ' || left(CAST(__r_amount AS VARCHAR), 60) WHEN __t_amount < 0 THEN "
        f"'negative amount: ' || left(CAST(__r_amount AS VARCHAR), 60) WHEN __t_amount > {AMOUNT_LIMIT!r} THEN "
        f"'amount beyond {_short(AMOUNT_LIMIT)}: ' || left(CAST(__r_amount AS VARCHAR), 60) END",
    ]
    if "transaction_id" in m:
        reasons.append("CASE WHEN __r_transaction_id IS NULL THEN 'missing transaction_id' END")
    for target, sqltype in TARGETS.items():
        if target in m and target not in ("ts", "amount", "transaction_id") and sqltype != "VARCHAR":
            kind = {"BOOLEAN": "not a boolean", "TIMESTAMP": "not a time"}.get(sqltype, "not a number")
            reasons.append(f"CASE WHEN __r_{target} IS NOT NULL AND __t_{target} IS NULL THEN "
                           f"'{target} {kind}: ' || left(CAST(__r_{target} AS VARCHAR), 60) END")
    for col in staged.columns:
        if value_kind(staged.types[col]) == "text":
            q, label = quote_ident(col), str(col)[:60].replace("'", "''")
            nul = f" WHEN contains({q}, chr(0)) THEN 'NUL byte in {label}'" if nul_checks else ""
            reasons.append(f"CASE WHEN strlen({q}) > {MAX_FIELD_BYTES} THEN 'field {label} longer than "
                           f"{MAX_FIELD_BYTES >> 20} MB'{nul} END")
    for target, limit in (("lat", 90), ("lon", 180), ("merchant_lat", 90), ("merchant_lon", 180)):
        if target in m:
            reasons.append(f"CASE WHEN abs(__t_{target}) > {limit} THEN '{target} out of range: ' || "
                           f"CAST(__t_{target} AS VARCHAR) END")
    for k, (col, (name, sqltype)) in enumerate(extras.items()):
        if sqltype != "DOUBLE":
            continue
        text = f"__xr_{k}" if value_kind(staged.types[col]) == "text" else f"CAST(__x_{k} AS VARCHAR)"
        if is_card_column(col) or is_card_column(name):  # a reason quotes the value: never a full card number
            text = mask_card_sql(text)
        label = name.replace("'", "''")
        check = (f"WHEN NOT isfinite(__x_{k}) THEN '{label} not finite: ' || left({text}, 60) "
                 f"WHEN abs(__x_{k}) > {EXTRA_NUMBER_LIMIT!r} THEN '{label} beyond {_short(EXTRA_NUMBER_LIMIT)}: ' || left({text}, 60)")
        if value_kind(staged.types[col]) == "text":
            check = f"WHEN __xr_{k} IS NOT NULL AND __x_{k} IS NULL THEN '{label} not a number: ' || left({text}, 60) " + check
        reasons.append(f"CASE {check} END")
    return reasons


def _short(limit: float) -> str:
    """A limit as the short text a reason quotes (1e12, 3.4e38)."""
    return f"{limit:g}".replace("e+", "e")


def raw_json(staged: Staged, with_file: bool, mapped_card: str | None = None) -> str:
    """JSON of the source record as read (plus the file name when a load has several files), card numbers masked."""
    fields = [f"{quote_ident(c)} := {_raw_value(c, staged.types[c], mapped_card)}" for c in staged.columns]
    if with_file:
        fields.insert(0, "_file := $file_names[__fidx + 1]")
    return f"to_json(struct_pack({', '.join(fields)}))"


def _raw_value(col: str, sqltype: str, mapped_card: str | None) -> str:
    """A source value as kept in quarantine: card numbers masked, an over-long field cut to its first 1,000 chars."""
    q = quote_ident(col)
    if is_card_column(col, mapped_card):
        return mask_card_sql(q)
    if value_kind(sqltype) == "text":
        return (f"CASE WHEN strlen({q}) > {MAX_FIELD_BYTES} THEN left({q}, 1000) || '… (' || "
                f"CAST(length({q}) AS VARCHAR) || ' characters)' ELSE {q} END")
    return q


def value_kind(sqltype: str) -> str:
    t = sqltype.upper()
    if t.startswith(("VARCHAR", "TEXT", "STRING")):
        return "text"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
             "UBIGINT", "FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "number"
    if t.startswith("TIMESTAMP WITH TIME ZONE") or t.startswith("TIMESTAMPTZ"):
        return "timetz"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return "time"
    return "bool" if t == "BOOLEAN" else "other"


def repeats_in_load_sql(also_set: str) -> str:
    """UPDATE of `_checked` quarantining every repeat of a transaction_id within the load (the first in file order
    stays), setting `also_set` too."""
    return f"""
        UPDATE _checked SET __reason = 'duplicate transaction_id in this load: ' || left(transaction_id, 60),
                            {also_set}
        FROM (SELECT __fidx AS f, __row AS r FROM (
                SELECT __fidx, __row, row_number() OVER (PARTITION BY transaction_id ORDER BY __fidx, __row) AS n
                FROM _checked WHERE __reason = '' AND transaction_id IN (
                    SELECT transaction_id FROM _checked WHERE __reason = '' GROUP BY 1 HAVING count(*) > 1))
              WHERE n > 1) d
        WHERE __fidx = d.f AND __row = d.r"""
