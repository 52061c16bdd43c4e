"""SOQL for the Salesforce emulator: a tokenizer and a recursive-descent parser into a query tree.

Follows Salesforce's SOQL reference (https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/
sforce_api_calls_soql_select.htm and its pages on conditionExpression, comparison operators, quoted string escape
sequences, date formats, ORDER BY, LIMIT, OFFSET, COUNT() and relationship queries). What the org knows (objects,
fields, relationships) and how a tree is answered live in sandbox/soql_eval.py; this module knows only syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

MAX_OFFSET = 2000  # Salesforce's documented OFFSET ceiling
KEYWORDS = frozenset(
    "SELECT FROM WHERE AND OR NOT IN LIKE ORDER BY ASC DESC NULLS FIRST LAST LIMIT OFFSET TRUE FALSE NULL "
    "GROUP HAVING WITH FOR USING TYPEOF INCLUDES EXCLUDES".split()
)
# A field is `Name`, `Account.Name`, `Contact.Account.Tier__c`; keywords are recognised case-insensitively.
TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
      | (?P<date>\d{4}-\d{2}-\d{2})(?![\w:])
      | (?P<number>[+-]?\d+(?:\.\d+)?)(?![\w.])
      | (?P<relative>(?:LAST|NEXT)_N_DAYS:\d+)(?!\w)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<string>')
      | (?P<op>!=|<>|<=|>=|=|<|>)
      | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
# Quoted string escape sequences; \% and \_ are literal wildcards, meaningful in LIKE only.
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
LIKE_WILDCARDS = {"%": ".*", "_": "."}
COMPARISONS = {"=", "!=", "<>", "<", ">", "<=", ">="}
# Relative date literals as whole UTC days from today: (first day, day after the last). LAST_N_DAYS:n and
# NEXT_N_DAYS:n take n (the SOQL reference's "Date Formats and Date Literals" page; the org's time zone is UTC).
DAY_RANGES = {"TODAY": lambda n: (0, 1), "YESTERDAY": lambda n: (-1, 0), "TOMORROW": lambda n: (1, 2),
              "LAST_N_DAYS": lambda n: (-n, 1), "NEXT_N_DAYS": lambda n: (1, n + 1)}


class SoqlError(Exception):
    """A query Salesforce refuses: its errorCode, its message text and where in the query it points."""

    def __init__(self, code: str, text: str, pos: int | None = None) -> None:
        """Keep the code, the text and the character offset (None: the error names no position)."""
        super().__init__(text)
        self.code, self.text, self.pos = code, text, pos

    def message(self, query: str) -> str:
        """Salesforce's message: the query row, a caret under the column, `ERROR at Row:r:Column:c`, the text."""
        if self.pos is None:
            return self.text
        row = query.count("\n", 0, self.pos) + 1
        start = query.rfind("\n", 0, self.pos) + 1
        end = query.find("\n", self.pos)
        line = query[start : end if end >= 0 else len(query)]
        column = self.pos - start + 1
        return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{self.text}"


@dataclass(frozen=True)
class Token:
    """One lexeme: kind (name, string, number, date, datetime, op, punct, end), its value and offset."""

    kind: str
    text: str
    pos: int
    value: Any = None
    like: str | None = None  # a string literal as a LIKE regex (wildcards live, escaped ones literal)

    def keyword(self) -> str | None:
        """The upper-cased keyword this name token spells, if it is one."""
        upper = self.text.upper()
        return upper if self.kind == "name" and upper in KEYWORDS else None


@dataclass(frozen=True)
class Literal:
    """A value in a condition: kind string, number, boolean, null, date or datetime."""

    kind: str
    value: Any
    pos: int
    like: str | None = None


@dataclass(frozen=True)
class Path:
    """A field path as written (`Account.Name`), split on dots, with its offset."""

    parts: tuple[str, ...]
    pos: int

    @property
    def text(self) -> str:
        """The path as written."""
        return ".".join(self.parts)


@dataclass(frozen=True)
class Compare:
    """`path op literal` (op one of = != < > <= >=)."""

    path: Path
    op: str
    literal: Literal


@dataclass(frozen=True)
class Member:
    """`path [NOT] IN (literal, ...)`."""

    path: Path
    literals: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    """`path LIKE 'pattern'`: % any run, _ one character, case-insensitively."""

    path: Path
    literal: Literal


@dataclass(frozen=True)
class Logical:
    """`a AND b AND ...` or `a OR b OR ...` (SOQL refuses a mix without parentheses)."""

    op: str
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Negation:
    """`NOT condition`."""

    item: Any


@dataclass(frozen=True)
class Order:
    """One ORDER BY key: ascending sorts nulls first, descending nulls last, unless NULLS says otherwise."""

    path: Path
    descending: bool
    nulls_first: bool


@dataclass
class Query:
    """A parsed SELECT: the select list (paths and subqueries), FROM, WHERE, ORDER BY, LIMIT, OFFSET, COUNT()."""

    sobject: str
    sobject_pos: int
    fields: list[Path | Query] = field(default_factory=list)
    count: bool = False
    where: Any = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    pos: int = 0  # where a subquery starts


def string_literal(text: str, start: int) -> tuple[str, str, int]:
    """The string literal opening at `start` (a quote): (value, LIKE regex, offset after the closing quote)."""
    value, like, i = [], [], start + 1
    while i < len(text):
        char = text[i]
        if char == "'":
            return "".join(value), "".join(like), i + 1
        if char == "\\":
            seq = text[i + 1 : i + 2]
            if seq in LIKE_WILDCARDS:  # \% and \_: the wildcard character itself
                value.append("\\" + seq)
                like.append(re.escape(seq))
                i += 2
                continue
            if seq == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
                char, i = chr(int(text[i + 2 : i + 6], 16)), i + 6
            elif seq.lower() in ESCAPES:  # \n and \N alike
                char, i = ESCAPES[seq.lower()], i + 2
            else:
                raise SoqlError("MALFORMED_QUERY", f"Invalid string literal '{text[start + 1:i + 2]}'. "
                                "Illegal character sequence '\\" + seq + "' in string literal.", i)
            value.append(char)
            like.append(re.escape(char))
            continue
        value.append(char)
        like.append(LIKE_WILDCARDS.get(char) or re.escape(char))
        i += 1
    raise SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>: unterminated string literal", start)


def parse_datetime(text: str) -> datetime:
    """A SOQL dateTime literal (or a stored Salesforce timestamp) as an aware datetime."""
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):  # Salesforce writes +0000; fromisoformat wants +00:00
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class DayRange:
    """A relative date literal: the instants from `start` up to, not including, `end`."""

    start: datetime
    end: datetime

    def holds(self, value: datetime) -> bool:
        """Whether an instant falls in the range (what `=` means for it)."""
        return self.start <= value < self.end


def day_range(first: int, after: int) -> DayRange:
    """The range of whole UTC days from today+first up to today+after."""
    midnight = datetime.combine(datetime.now(timezone.utc).date(), time(), timezone.utc)
    return DayRange(midnight + timedelta(days=first), midnight + timedelta(days=after))


def tokenize(text: str) -> list[Token]:
    """The query's tokens, ending in an `end` token; an unknown character is MALFORMED_QUERY."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        match = TOKEN.match(text, i)
        if not match:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[i]}'", i)
        kind = match.lastgroup or ""
        if kind == "string":
            value, like, end = string_literal(text, i)
            tokens.append(Token("string", text[i:end], i, value, like))
            i = end
            continue
        lexeme = match.group()
        if kind == "datetime":
            tokens.append(Token(kind, lexeme, i, parse_datetime(lexeme)))
        elif kind == "date":
            tokens.append(Token(kind, lexeme, i, date.fromisoformat(lexeme)))
        elif kind == "number":
            tokens.append(Token(kind, lexeme, i, float(lexeme)))
        elif kind != "space":
            tokens.append(Token(kind, lexeme, i))
        i = match.end()
    tokens.append(Token("end", "<EOF>", len(text)))
    return tokens


class Parser:
    """Recursive descent over the tokens of one query; every refusal is MALFORMED_QUERY at the offending token."""

    def __init__(self, text: str) -> None:
        """Tokenize the whole query first, so a bad literal anywhere is found."""
        self.tokens = tokenize(text)
        self.i = 0

    # --- token helpers -----------------------------------------------------------------------------

    @property
    def token(self) -> Token:
        """The current token."""
        return self.tokens[self.i]

    def unexpected(self, token: Token | None = None) -> SoqlError:
        """Salesforce's `unexpected token` for the current (or given) token."""
        token = token or self.token
        return SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}'", token.pos)

    def accept(self, *keywords: str) -> Token | None:
        """Consume the current token if it is one of the keywords (or punctuation/operators) given."""
        token = self.token
        if token.keyword() in keywords or (token.kind in ("punct", "op") and token.text in keywords):
            self.i += 1
            return token
        return None

    def expect(self, *keywords: str) -> Token:
        """Consume one of the keywords given, or refuse the query."""
        token = self.accept(*keywords)
        if token is None:
            raise self.unexpected()
        return token

    def name(self) -> Token:
        """A field, object or relationship name (not a keyword)."""
        token = self.token
        if token.kind != "name" or token.keyword():
            raise self.unexpected()
        self.i += 1
        return token

    def integer(self) -> int:
        """A non-negative whole number (LIMIT, OFFSET)."""
        token = self.token
        if token.kind != "number" or not token.text.isdigit():
            raise self.unexpected()
        self.i += 1
        return int(token.text)

    # --- grammar -----------------------------------------------------------------------------------

    def parse(self) -> Query:
        """The whole text is one query."""
        query = self.select(nested=False)
        if self.token.kind != "end":
            raise self.unexpected()
        return query

    def select(self, nested: bool) -> Query:
        """`SELECT list FROM name [WHERE c] [ORDER BY ...] [LIMIT n] [OFFSET n]`."""
        start = self.expect("SELECT")
        fields: list[Path | Query] = []
        count = False
        if self.token.text.upper() == "COUNT" and self.tokens[self.i + 1].text == "(":
            self.i += 1
            self.expect("(")
            self.expect(")")
            count = True
        else:
            fields.append(self.select_item(nested))
            while self.accept(","):
                fields.append(self.select_item(nested))
        self.expect("FROM")
        sobject = self.name()
        query = Query(sobject.text, sobject.pos, fields, count, pos=start.pos)
        if self.accept("WHERE"):
            query.where = self.condition()
        if self.accept("ORDER"):
            self.expect("BY")
            query.order.append(self.order_key())
            while self.accept(","):
                query.order.append(self.order_key())
        if self.accept("LIMIT"):
            query.limit = self.integer()
        if self.accept("OFFSET"):
            token = self.token
            query.offset = self.integer()
            if query.offset > MAX_OFFSET:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}", token.pos)
        return query

    def select_item(self, nested: bool) -> Path | Query:
        """A field path, or (at the top level only) a parenthesised child-relationship subquery."""
        if self.token.text == "(" and not nested:
            self.i += 1
            query = self.select(nested=True)
            self.expect(")")
            return query
        token = self.name()
        return Path(tuple(token.text.split(".")), token.pos)

    def order_key(self) -> Order:
        """`path [ASC|DESC] [NULLS FIRST|LAST]`."""
        token = self.name()
        descending = bool(self.accept("ASC", "DESC") and self.tokens[self.i - 1].keyword() == "DESC")
        nulls_first = not descending
        if self.accept("NULLS"):
            nulls_first = self.expect("FIRST", "LAST").keyword() == "FIRST"
        return Order(Path(tuple(token.text.split(".")), token.pos), descending, nulls_first)

    def condition(self) -> Any:
        """`[NOT] simple (AND simple)*` or `... (OR simple)*`: mixing AND and OR needs parentheses."""
        if self.accept("NOT"):
            first: Any = Negation(self.simple())
        else:
            first = self.simple()
        items, op = [first], None
        while self.token.keyword() in ("AND", "OR"):
            if op is not None and self.token.keyword() != op:
                raise self.unexpected()
            op = self.token.keyword()
            self.i += 1
            items.append(self.simple())
        return Logical(op, tuple(items)) if op else first

    def simple(self) -> Any:
        """`( condition )` or one field expression."""
        if self.accept("("):
            inner = self.condition()
            self.expect(")")
            return inner
        token = self.name()
        path = Path(tuple(token.text.split(".")), token.pos)
        if self.accept("LIKE"):
            literal = self.literal()
            if literal.kind != "string":
                raise self.unexpected(self.tokens[self.i - 1])
            return Like(path, literal)
        negated = bool(self.accept("NOT"))
        if negated or self.token.keyword() == "IN":
            self.expect("IN")
            self.expect("(")
            literals = [self.literal()]
            while self.accept(","):
                literals.append(self.literal())
            self.expect(")")
            return Member(path, tuple(literals), negated)
        op = self.token
        if op.kind != "op" or op.text not in COMPARISONS:
            raise self.unexpected()
        self.i += 1
        return Compare(path, "!=" if op.text == "<>" else op.text, self.literal())

    def literal(self) -> Literal:
        """A string, number, date, dateTime, true, false or null."""
        token = self.token
        keyword = token.keyword()
        if token.kind in ("string", "number", "date", "datetime"):
            self.i += 1
            return Literal(token.kind, token.value, token.pos, token.like)
        name, _, days = token.text.upper().partition(":")
        if token.kind in ("name", "relative") and name in DAY_RANGES:
            self.i += 1
            return Literal("datetime", day_range(*DAY_RANGES[name](int(days or 0))), token.pos)
        if keyword in ("TRUE", "FALSE"):
            self.i += 1
            return Literal("boolean", keyword == "TRUE", token.pos)
        if keyword == "NULL":
            self.i += 1
            return Literal("null", None, token.pos)
        raise self.unexpected()


def parse(text: str) -> Query:
    """The query tree of a SOQL SELECT, or SoqlError (MALFORMED_QUERY) pointing at the offending token."""
    return Parser(text).parse()

