"""What a user-defined feature is, and the whitelist that checks every piece of text a user types into one.

A definition is a frozen `FeatureDef`; `check_definition` refuses anything but a window aggregate over existing
columns, with `where` / `expression` text passed through `clean_expression`, a small tokenizer that accepts
columns, a short list of functions, numbers, string literals and operators, and re-emits them with every
column quoted. Anything else (a `;`, SELECT, a comment, an unknown column or function) is a FeatureDefError.

>>> parse_window("30d"), parse_window("5m"), parse_window("all")
(2592000, 300, None)
>>> clean_expression("amount > 100 AND channel = 'online'", {"amount", "channel"})
'"amount" > 100 AND "channel" = \\'online\\''
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace

from fraudlab.errors import FeatureDefError
from fraudlab.schema import LABEL_DERIVED
from fraudlab.workspace import quote_ident

AGGREGATES = ("count", "sum", "mean", "std", "min", "max", "distinct", "since_last", "ratio", "zscore", "value")
NEEDS_OF = ("sum", "mean", "std", "min", "max", "distinct", "ratio", "zscore", "value")
ROW_VALUE = ("ratio", "zscore", "value")  # these read the row's own value, never allowed on a label column
KEYS = ("customer_id", "card_id", "device_id", "ip", "email", "merchant_id")
FUNCTIONS = ("abs", "ln", "log10", "sqrt", "least", "greatest", "coalesce", "lower", "upper", "hour", "isodow",
             "round", "nullif")
KEYWORDS = ("and", "or", "not", "in", "case", "when", "then", "else", "end", "is", "null", "true", "false",
            "between", "like")
NEVER = ("select", "from", "join", "union", "insert", "update", "delete", "drop", "create", "alter", "attach",
         "copy", "pragma", "with", "install", "load", "set", "call", "export", "import", "over", "window")
HIDDEN_COLUMNS = ("ingest_id",)
UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
WINDOW = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>--|/\*|\*/)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|!=|<=|>=|\|\||[-+*/%=<>(),])
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class FeatureDef:
    """One user-defined point-in-time feature: `aggregate` of `of` (or `expression`) over the key's earlier events.

    `window` ("30d", "all") bounds how far back; `delay` shifts the window's end back to t - delay (for labels
    that take time to arrive); `where` keeps only the earlier events it matches.
    """

    name: str
    key: str | None = "customer_id"
    aggregate: str = "count"
    of: str | None = None
    window: str = "30d"
    delay: str | None = None
    where: str | None = None
    expression: str | None = None

    def to_dict(self) -> dict:
        """The fields as a plain dict (stored as JSON in the workspace)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureDef":
        """A definition from its stored dict (unknown keys are ignored)."""
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})

    def describe(self) -> str:
        """One plain sentence saying what the feature measures."""
        value = self.expression or self.of or "events"
        if self.aggregate == "value":
            return f"{value} of the transaction itself"
        span = "all earlier history" if self.window in (None, "all") else f"the previous {self.window}"
        text = f"{self.aggregate} of {value} per {self.key} over {span}"
        text += f", ending {self.delay} before the transaction" if self.delay else ""
        return text + (f", where {self.where}" if self.where else "")


def parse_window(text: str | None) -> int | None:
    """Seconds in a window like 5m / 1h / 7d / 2w ("all" or empty: None, all history); must be positive."""
    if text is None or str(text).strip().lower() in ("", "all"):
        return None
    match = WINDOW.match(str(text))
    if not match:
        raise FeatureDefError(f"window {text!r} is not a duration: write a number and a unit, e.g. 5m, 1h, 7d, 30d "
                              f"(units: s, m, h, d, w), or 'all' for all history")
    seconds = float(match.group(1)) * UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise FeatureDefError(f"window {text!r} must be positive, e.g. 7d")
    return int(seconds)


def parse_delay(text: str | None) -> int:
    """Seconds of a label delay like 7d (empty: 0)."""
    if text is None or str(text).strip() == "":
        return 0
    seconds = parse_window(text)
    if seconds is None:
        raise FeatureDefError(f"delay {text!r} must be a duration like 7d")
    return seconds


def clean_expression(text: str, columns: set[str]) -> str:
    """The expression re-emitted from whitelisted tokens with columns quoted; FeatureDefError names what is refused."""
    out: list[str] = []
    depth = 0
    tokens = [(m.lastgroup, m.group()) for m in TOKEN.finditer(text) if m.lastgroup != "space"]
    if not tokens:
        raise FeatureDefError("the expression is empty")
    for i, (kind, value) in enumerate(tokens):
        low = value.lower()
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "comment":
            raise FeatureDefError(f"comments ({value}) are not allowed in a feature expression")
        if kind == "other":
            what = "';' (one expression only, no statements)" if value == ";" else repr(value)
            raise FeatureDefError(f"{what} is not allowed in a feature expression")
        if kind == "word":
            if low in NEVER:
                raise FeatureDefError(f"{value.upper()} is not allowed: a feature is one expression over the row's "
                                      f"columns (no queries, subqueries or statements)")
            if following == "(" and low not in KEYWORDS:
                if low not in FUNCTIONS:
                    raise FeatureDefError(f"function {value!r} is not allowed; use one of {', '.join(FUNCTIONS)}")
                out.append(low)
            elif low in KEYWORDS:
                out.append(low.upper())
            elif low in columns:
                out.append(quote_ident(low))
            else:
                raise FeatureDefError(f"unknown column {value!r}; columns are: {', '.join(sorted(columns))}")
            continue
        if value == "(":
            depth += 1
        elif value == ")":
            depth -= 1
            if depth < 0:
                raise FeatureDefError("a ')' has no matching '('")
        out.append(value)
    if depth:
        raise FeatureDefError("a '(' is never closed")
    return " ".join(out).replace("( ", "(").replace(" )", ")").replace(" ,", ",")


def label_columns(columns: set[str]) -> set[str]:
    """Columns that carry the label (is_fraud, or names like fraud_flag): usable only in a delayed window."""
    return {c for c in columns if c == "is_fraud" or LABEL_DERIVED.search(c)}


def check_definition(defn: FeatureDef, columns: list[str] | set[str], leaky: set[str] | frozenset = frozenset()
                     ) -> FeatureDef:
    """The definition with names normalised, or FeatureDefError saying what to fix (valid choices listed).

    `leaky` names source columns the leakage guard found to give the label away: like the label, they are usable
    only in a delayed window."""
    usable = {c.lower() for c in columns} - set(HIDDEN_COLUMNS)
    name = (defn.name or "").strip().lower()
    if not NAME.match(name):
        raise FeatureDefError(f"feature name {defn.name!r}: use lower-case letters, digits and _, starting with a "
                              f"letter (at most 63 characters)")
    aggregate = (defn.aggregate or "").strip().lower()
    if aggregate not in AGGREGATES:
        raise FeatureDefError(f"unknown aggregate {defn.aggregate!r}; use one of {', '.join(AGGREGATES)}")
    key = (defn.key or "").strip().lower() or None
    if aggregate != "value":
        if key is None or key not in usable:
            raise FeatureDefError(f"unknown key {defn.key!r}; use one of "
                                  f"{', '.join([k for k in KEYS if k in usable] + sorted(usable - set(KEYS)))}")
    of = (defn.of or "").strip().lower() or None
    expression = (defn.expression or "").strip() or None
    if of is not None and of not in usable:
        raise FeatureDefError(f"unknown column {defn.of!r} for 'of'; columns are: {', '.join(sorted(usable))}")
    if aggregate in NEEDS_OF and of is None and expression is None:
        raise FeatureDefError(f"aggregate {aggregate!r} needs a column ('of') or an expression")
    parse_window(defn.window)
    delay = parse_delay(defn.delay)
    where = (defn.where or "").strip() or None
    texts = [t for t in (where, expression) if t] + ([of] if of else [])
    for text in texts:
        clean_expression(text, usable)
    labels = label_columns(usable) | {c.lower() for c in leaky}
    used = {w.lower() for t in texts for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", re.sub(r"'(?:[^']|'')*'", "", t))}
    if used & labels and (delay == 0 or aggregate in ROW_VALUE):
        raise FeatureDefError(f"{', '.join(sorted(used & labels))} is the label: use it only in a windowed aggregate "
                              f"with a delay (e.g. --delay 7d), so the window holds labels already known")
    return replace(defn, name=name, key=None if aggregate == "value" else key, aggregate=aggregate, of=of,
                   window="all" if parse_window(defn.window) is None else str(defn.window).strip().lower(),
                   delay=(str(defn.delay).strip().lower() if delay else None), where=where, expression=expression)
