"""``$[...]`` expressions, evaluated the way Asterisk's expr2 parser does.

Reference: Asterisk main/ast_expr2.fl (tokens) and main/ast_expr2.y (grammar and operators), and
docs.asterisk.org "Configuration/Dialplan/Expressions". Operators from lowest to highest
precedence: ``? ::``, ``|``, ``&``, ``= != < > <= >=`` (also ``==``), ``+ -``, ``* / %``, unary
``- !``, ``: =~ ~~``; parentheses and ``NAME(args)`` calls bind tightest.

Values are strings, numeric strings (a token of digits with an optional ``.digits`` part) or
numbers. Comparisons are numeric unless either side is a plain string. Numbers are ``long
double`` in Asterisk and print with ``%.18Lg``; here they are decimals with 20 digits of
precision printed the same way, so ``$[(3+8)/2]`` is ``5.5`` and ``$[10/3]`` is
``3.33333333333333333``. Quoted strings keep their quotes (only ``:``, ``=~`` and ``~~`` strip
them). Every operand is evaluated (``? ::``, ``&`` and ``|`` do not short-circuit).

``:`` (anchored) and ``=~`` take POSIX extended regular expressions as glibc ``regcomp`` reads
them and return the first group or the match length; they run on the linear-time NFA below, so
a hostile pattern or subject cannot stall the caller.

Errors never raise: they are reported through ``warn`` and give Asterisk's result. A syntax
error after a complete expression yields that expression's value (bison's default reductions
set the result before the error is seen); any other syntax error yields ``"0"``; an empty
expression yields ``""``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
)
from enum import Enum

from pypbx.dialplan.posix_regex import RegexError, compile_ere

Warn = Callable[[str], None]
FunctionCall = Callable[[str, str], str | None]

__all__ = ["FunctionCall", "Warn", "evaluate", "format_number"]

# long double: 64-bit mantissa (~19.3 digits), exponent range about 1e±4932.
_CTX = Context(prec=20, rounding=ROUND_HALF_EVEN, Emax=4932, Emin=-4951, traps=[])
_PRINT_CTX = Context(prec=18, rounding=ROUND_HALF_EVEN, Emax=999999, Emin=-999999, traps=[])
_ZERO = Decimal(0)
_INT_MAX = Decimal(2147483647)
_MAX_NESTING = 100  # bison's stack is larger; Python's is not


def _ignore(_message: str) -> None:
    """The default warning sink: drop the message."""


# --------------------------------------------------------------------------- values


class _Kind(Enum):
    NUMBER = "number"
    NUMERIC_STRING = "numeric_string"
    STRING = "string"


@dataclass(frozen=True, slots=True)
class _Val:
    kind: _Kind
    text: str = ""
    num: Decimal = _ZERO


def _number(d: Decimal) -> _Val:
    return _Val(_Kind.NUMBER, num=d)


def _make_str(s: str) -> _Val:
    """``make_str``: numeric if it starts with a digit or '.' and holds only digits and dots."""
    numeric = s.isascii() and all(c.isdigit() or c == "." for c in s)
    if s and (s[0].isdigit() or s[0] == ".") and numeric:
        return _Val(_Kind.NUMERIC_STRING, s)
    return _Val(_Kind.STRING, s)


_STRTOD = re.compile(r"[ \t\n\v\f\r]*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))")


def _strtold(s: str) -> Decimal:
    """The numeric prefix of ``s`` as ``strtold`` reads it (no exponent: never in our input)."""
    m = _STRTOD.match(s)
    if not m:
        return _ZERO
    text = m.group(1)
    if text.endswith("."):
        text += "0"
    return _CTX.create_decimal(text)


def format_number(d: Decimal) -> str:
    """Format a number as C's ``printf("%.18Lg")`` does."""
    if d.is_nan():
        return "-nan"
    if d.is_infinite():
        return "-inf" if d.is_signed() else "inf"
    sign = "-" if d.is_signed() else ""
    if d.is_zero():
        return sign + "0"
    r = _PRINT_CTX.plus(d.copy_abs())
    digits = "".join(map(str, r.as_tuple().digits)).rstrip("0") or "0"
    exp = r.adjusted()
    if -4 <= exp < 18:
        if exp >= 0:
            whole = digits[: exp + 1].ljust(exp + 1, "0")
            frac = digits[exp + 1 :]
        else:
            whole = "0"
            frac = "0" * (-exp - 1) + digits
        return sign + whole + ("." + frac if frac else "")
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _to_string(v: _Val) -> str:
    return format_number(v.num) if v.kind is _Kind.NUMBER else v.text


def _strip_quotes(s: str) -> str:
    """``strip_quotes``: when the string starts and ends with '"', drop every '"' in it."""
    if s.startswith('"') and s.endswith('"'):
        return s.replace('"', "")
    return s


def _atoi_is_zero(s: str) -> bool:
    """Whether C's ``atoi(s)`` is zero (a long clamped, then cut to a 32-bit int)."""
    m = re.match(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", s)
    if not m:
        return True
    value = max(-(2**63), min(2**63 - 1, int(m.group(1))))
    return value % 2**32 == 0


# --------------------------------------------------------------------------- tokens


class _T(Enum):
    TOKEN = "<token>"
    COND = "?"
    COLONCOLON = "::"
    OR = "|"
    AND = "&"
    EQ = "="
    GT = ">"
    LT = "<"
    GE = ">="
    LE = "<="
    NE = "!="
    PLUS = "+"
    MINUS = "-"
    MULT = "*"
    DIV = "/"
    MOD = "%"
    COMPL = "!"
    COLON = ":"
    EQTILDE = "=~"
    TILDETILDE = "~~"
    COMMA = ","
    LP = "("
    RP = ")"
    END = "$end"


@dataclass(frozen=True, slots=True)
class _Token:
    type: _T
    value: _Val
    pos: int


_OPS2 = {
    "||": _T.OR,
    "&&": _T.AND,
    "==": _T.EQ,
    "=~": _T.EQTILDE,
    "~~": _T.TILDETILDE,
    ">=": _T.GE,
    "<=": _T.LE,
    "!=": _T.NE,
    "::": _T.COLONCOLON,
}
_OPS1 = {t.value: t for t in _T if len(t.value) == 1}
_WORD_PUNCT = frozenset(".';\\_^#@")
_TRAIL_STOP = frozenset("-\t\r \n$():?%/+=*<>!|&")


def _is_word_char(c: str) -> bool:
    return (c.isascii() and c.isalnum()) or c in _WORD_PUNCT or ord(c) >= 0x80


def _word_end(text: str, i: int) -> int:
    """End of the longest ``([a-zA-Z0-9.';\\_^#@]|[\\x80-\\xff]|$[^{])+`` match at ``i``."""
    n = len(text)
    while i < n:
        if _is_word_char(text[i]):
            i += 1
        elif text[i] == "$" and i + 1 < n and text[i + 1] != "{":
            i += 2
        else:
            break
    return i


def _number_end(text: str, i: int) -> int:
    """End of a ``[0-9]+(\\.[0-9]+)?`` match at ``i`` (``i`` when none)."""
    n = len(text)
    j = i
    while j < n and text[j].isascii() and text[j].isdigit():
        j += 1
    if j > i and j + 1 < n and text[j] == "." and text[j + 1].isascii() and text[j + 1].isdigit():
        j += 1
        while j < n and text[j].isascii() and text[j].isdigit():
            j += 1
    return j


def _var_end(text: str, i: int) -> int | None:
    """Scan a ``${...}`` reference plus its trailing text (ast_expr2.fl ``var``/``trail``).

    ``i`` points just after ``${``. Returns the end of the token, or ``None`` when the input
    ends inside the braces (flex then drops the pending text).
    """
    n = len(text)
    while True:
        depth = 0
        while True:  # <var>
            j = i
            while j < n and text[j] not in "{}":
                j += 1
            if j >= n:
                return None
            i = j + 1
            if text[j] == "{":
                depth += 1
            else:
                depth -= 1
                if depth < 0:
                    break
        j = i  # <trail>
        while j < n and text[j] not in _TRAIL_STOP:
            j += 1
        if text.startswith("${", j):
            i = j + 2
            continue
        return j


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        two = text[i : i + 2]
        if c in " \t\r\n":
            i += 1
        elif two == "${":
            end = _var_end(text, i + 2)
            if end is None:
                break
            tokens.append(_Token(_T.TOKEN, _Val(_Kind.STRING, text[i:end]), i))
            i = end
        elif c == '"':
            close = text.find('"', i + 1)
            if close < 0:
                i += 1  # flex's default rule: an unmatched character is echoed and skipped
                continue
            tokens.append(_Token(_T.TOKEN, _Val(_Kind.STRING, text[i : close + 1]), i))
            i = close + 1
        elif two in _OPS2:
            tokens.append(_Token(_OPS2[two], _Val(_Kind.STRING, two), i))
            i += 2
        elif c in _OPS1:
            tokens.append(_Token(_OPS1[c], _Val(_Kind.STRING, c), i))
            i += 1
        else:
            word = _word_end(text, i)
            if word > i and text.startswith("${", word):
                end = _var_end(text, word + 2)
                if end is None:
                    break
                tokens.append(_Token(_T.TOKEN, _Val(_Kind.STRING, text[i:end]), i))
                i = end
                continue
            number = _number_end(text, i)
            if number > i and number >= word:
                tokens.append(_Token(_T.TOKEN, _Val(_Kind.NUMERIC_STRING, text[i:number]), i))
                i = number
            elif word > i:
                tokens.append(_Token(_T.TOKEN, _Val(_Kind.STRING, text[i:word]), i))
                i = word
            else:
                i += 1  # flex's default rule again
    tokens.append(_Token(_T.END, _Val(_Kind.STRING), n))
    return tokens


# --------------------------------------------------------------------------- parser


class _SyntaxError(Exception):
    def __init__(self, token: _Token, partial: _Val | None = None) -> None:
        super().__init__(token.type.value)
        self.token = token
        self.partial = partial


_COND_PREC = 1
_COMPL_PREC = 7
_BINARY: dict[_T, int] = {
    _T.COND: _COND_PREC,
    _T.OR: 2,
    _T.AND: 3,
    _T.EQ: 4,
    _T.GT: 4,
    _T.LT: 4,
    _T.GE: 4,
    _T.LE: 4,
    _T.NE: 4,
    _T.PLUS: 5,
    _T.MINUS: 5,
    _T.MULT: 6,
    _T.DIV: 6,
    _T.MOD: 6,
    _T.COLON: 8,
    _T.EQTILDE: 8,
    _T.TILDETILDE: 8,
}
_STARTS = frozenset({_T.TOKEN, _T.LP, _T.MINUS, _T.COMPL})


class _Parser:
    """Operator-precedence parser that evaluates as it reduces, in bison's order."""

    def __init__(self, text: str, warn: Warn, call_function: FunctionCall | None) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0
        self.warn = warn
        self.call_function = call_function

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        if token.type is not _T.END:
            self.pos += 1
        return token

    def expect(self, kind: _T) -> None:
        if self.peek().type is not kind:
            raise _SyntaxError(self.peek())
        self.take()

    def parse(self) -> _Val:
        if self.peek().type not in _STARTS:
            if self.peek().type is _T.END:
                return _Val(_Kind.STRING)
            raise _SyntaxError(self.peek(), _Val(_Kind.STRING))
        value = self.expression(_COND_PREC)
        if self.peek().type is not _T.END:
            raise _SyntaxError(self.peek(), value)
        return value

    def expression(self, min_prec: int) -> _Val:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise _SyntaxError(self.peek())
        left = self.operand()
        while True:
            kind = self.peek().type
            prec = _BINARY.get(kind)
            if prec is None or prec < min_prec:
                break
            self.take()
            if kind is _T.COND:
                middle = self.expression(_COND_PREC)
                self.expect(_T.COLONCOLON)
                right = self.expression(_COND_PREC + 1)
                left = _op_cond(left, middle, right)
            else:
                right = self.expression(prec + 1)
                left = self.binary(kind, left, right)
        self.depth -= 1
        return left

    def operand(self) -> _Val:
        token = self.take()
        if token.type is _T.TOKEN:
            if self.peek().type is _T.LP:
                self.take()
                args = self.arguments()
                return self.function(token.value, args)
            return token.value
        if token.type is _T.LP:
            value = self.expression(_COND_PREC)
            self.expect(_T.RP)
            return value
        if token.type is _T.MINUS:
            return self.negate(self.expression(_COMPL_PREC))
        if token.type is _T.COMPL:
            return _op_compl(self.expression(_COMPL_PREC))
        raise _SyntaxError(token)

    def arguments(self) -> list[_Val]:
        args = [self.expression(_COND_PREC)]
        while self.peek().type is _T.COMMA:
            self.take()
            if self.peek().type in (_T.COMMA, _T.RP):
                args.append(_make_str(""))
            else:
                args.append(self.expression(_COND_PREC))
        self.expect(_T.RP)
        return args

    # ------------------------------------------------------------------ operators

    def to_number(self, v: _Val) -> _Val | None:
        """``to_number``: the value as a number, or ``None`` for a plain string."""
        if v.kind is _Kind.NUMBER:
            return v
        if v.kind is _Kind.STRING:
            return None
        d = _strtold(v.text)
        if d.is_infinite():
            self.warn(f"Conversion of {v.text} to number under/overflowed!")
            return None
        return _number(d)

    def is_zero_or_null(self, v: _Val) -> tuple[bool, _Val]:
        """``is_zero_or_null``, also giving back the value as converted on the way."""
        if v.kind is _Kind.NUMBER:
            return v.num.is_zero(), v
        if v.text == "":
            return True, v
        n = self.to_number(v)
        if n is None:
            return False, v
        return n.num.is_zero(), n

    def binary(self, kind: _T, a: _Val, b: _Val) -> _Val:
        if kind is _T.OR:
            zero, a = self.is_zero_or_null(a)
            return b if zero else a
        if kind is _T.AND:
            zero_a, a = self.is_zero_or_null(a)
            if zero_a or self.is_zero_or_null(b)[0]:
                return _number(_ZERO)
            return a
        if kind in _COMPARE:
            return self.compare(kind, a, b)
        if kind in (_T.COLON, _T.EQTILDE):
            return self.match(a, b, anchored=kind is _T.COLON)
        if kind is _T.TILDETILDE:
            return _make_str(_strip_quotes(_to_string(a)) + _strip_quotes(_to_string(b)))
        return self.arithmetic(kind, a, b)

    def compare(self, kind: _T, a: _Val, b: _Val) -> _Val:
        if a.kind is _Kind.STRING or b.kind is _Kind.STRING:
            sa, sb = _to_string(a), _to_string(b)
            order = (sa > sb) - (sa < sb)
            return _number(Decimal(int(_COMPARE[kind](order))))
        na, nb = self.to_number(a), self.to_number(b)
        x = na.num if na else _ZERO
        y = nb.num if nb else _ZERO
        if x.is_nan() or y.is_nan():
            return _number(Decimal(int(kind is _T.NE)))
        order = int(_CTX.compare(x, y))
        return _number(Decimal(int(_COMPARE[kind](order))))

    def arithmetic(self, kind: _T, a: _Val, b: _Val) -> _Val:
        na, nb = self.to_number(a), self.to_number(b)
        if kind is _T.PLUS or kind is _T.MINUS:
            if na is None:
                self.warn("non-numeric argument")
                if nb is None:
                    return _number(_ZERO)
                return nb if kind is _T.PLUS else _number(_CTX.subtract(_ZERO, nb.num))
            if nb is None:
                if kind is _T.MINUS:
                    self.warn("non-numeric argument")
                return na
            op = _CTX.add if kind is _T.PLUS else _CTX.subtract
            return _number(op(na.num, nb.num))
        if na is None or nb is None:
            self.warn("non-numeric argument")
            return _number(_INT_MAX if kind is _T.DIV and na is not None else _ZERO)
        if kind is _T.MULT:
            return _number(_CTX.multiply(na.num, nb.num))
        if nb.num.is_zero():
            self.warn("division by zero" if kind is _T.DIV else "div by zero")
            return _number(_INT_MAX) if kind is _T.DIV else nb
        if kind is _T.DIV:
            return _number(_CTX.divide(na.num, nb.num))
        return _number(_exact(Context.remainder, na.num, nb.num))

    def negate(self, a: _Val) -> _Val:
        n = self.to_number(a)
        if n is None:
            self.warn("non-numeric argument")
            return _number(_ZERO)
        return _number(n.num.copy_negate())

    def match(self, a: _Val, b: _Val, *, anchored: bool) -> _Val:
        subject = _strip_quotes(_to_string(a))
        pattern = _strip_quotes(_to_string(b))
        try:
            rx = compile_ere(pattern)
        except RegexError as e:
            self.warn(f"regcomp() error : {e}")
            return _make_str("")
        found = rx.search(subject, anchored=anchored)
        if found is None:
            return _number(_ZERO) if rx.groups == 0 else _make_str("")
        start, end, group_start, group_end = found
        if rx.groups and group_start >= 0 and group_end >= 0:
            return _make_str(subject[group_start:group_end])
        return _number(Decimal(end - start))

    def function(self, name_val: _Val, args: list[_Val]) -> _Val:
        name = name_val.text
        if not name or not all(c in _FUNC_NAME_CHARS for c in name):
            self.warn(f"Error! '{name}' is not possibly a function name!")
            return _number(_ZERO)
        builtin = _BUILTINS.get(name)
        if builtin is not None:
            arity, fn = builtin
            if len(args) != arity:
                self.warn(f"Wrong args to {name}() function")
                return _number(_ZERO)
            nums = [self.to_number(v) for v in args]
            return _number(fn(*[n.num if n else _ZERO for n in nums]))
        if self.call_function is None:
            self.warn(f"Error! '{name}' doesn't appear to be an available function!")
            return _number(_ZERO)
        argbuf = ",".join(_to_string(v) for v in args)
        result = self.call_function(name, argbuf)
        if result is None:
            self.warn(f"Error! '{name}' doesn't appear to be an available function!")
            return _number(_ZERO)
        if all(c in "-0123456789. \t" for c in result):
            return _number(_strtold(result))
        return _make_str(result)


_COMPARE: dict[_T, Callable[[int], bool]] = {
    _T.EQ: lambda o: o == 0,
    _T.NE: lambda o: o != 0,
    _T.LT: lambda o: o < 0,
    _T.GT: lambda o: o > 0,
    _T.LE: lambda o: o <= 0,
    _T.GE: lambda o: o >= 0,
}


def _op_cond(a: _Val, b: _Val, c: _Val) -> _Val:
    if a.kind is _Kind.STRING:
        return b if a.text not in ("", '""', "0") else c
    if a.kind is _Kind.NUMBER:
        return c if a.num.is_zero() else b
    return c if _strtold(a.text).is_zero() else b


def _op_compl(a: _Val) -> _Val:
    if a.kind is _Kind.NUMBER:
        true = not a.num.is_zero()
    else:
        true = a.text not in ("", "0") and not _atoi_is_zero(a.text)
    return _number(Decimal(int(not true)))


# --------------------------------------------------------------------------- built-in functions


def _exact(op: Callable[[Context, Decimal, Decimal], Decimal], a: Decimal, b: Decimal) -> Decimal:
    """fmod/remainder computed exactly (Decimal refuses when the quotient outgrows precision)."""
    if not (a.is_finite() and b.is_finite()):
        return _CTX.plus(op(_CTX, a, b))
    digits = max(20, a.adjusted() - b.adjusted() + 25)
    wide = Context(prec=digits, Emax=_CTX.Emax, Emin=_CTX.Emin, traps=[])
    return _CTX.plus(op(wide, a, b))


def _via_float(fn: Callable[..., float]) -> Callable[..., Decimal]:
    def call(*args: Decimal) -> Decimal:
        try:
            return _CTX.create_decimal_from_float(fn(*[float(a) for a in args]))
        except (ValueError, OverflowError):
            return Decimal("NaN")

    return call


def _rounder(mode: str) -> Callable[[Decimal], Decimal]:
    return lambda x: x.to_integral_value(rounding=mode, context=_CTX)


def _log2(x: Decimal) -> Decimal:
    return _CTX.divide(_CTX.ln(x), _CTX.ln(Decimal(2)))


_BUILTINS: dict[str, tuple[int, Callable[..., Decimal]]] = {
    "COS": (1, _via_float(math.cos)),
    "SIN": (1, _via_float(math.sin)),
    "TAN": (1, _via_float(math.tan)),
    "ACOS": (1, _via_float(math.acos)),
    "ASIN": (1, _via_float(math.asin)),
    "ATAN": (1, _via_float(math.atan)),
    "ATAN2": (2, _via_float(math.atan2)),
    "POW": (2, _CTX.power),
    "SQRT": (1, _CTX.sqrt),
    "FLOOR": (1, _rounder(ROUND_FLOOR)),
    "CEIL": (1, _rounder(ROUND_CEILING)),
    "ROUND": (1, _rounder(ROUND_HALF_UP)),
    "RINT": (1, _rounder(ROUND_HALF_EVEN)),
    "TRUNC": (1, _rounder(ROUND_DOWN)),
    "EXP": (1, _CTX.exp),
    "EXP2": (1, lambda x: _CTX.power(Decimal(2), x)),
    "EXP10": (1, lambda x: _CTX.power(Decimal(10), x)),
    "LOG": (1, _CTX.ln),
    "LOG2": (1, _log2),
    "LOG10": (1, _CTX.log10),
    "REMAINDER": (2, lambda a, b: _exact(Context.remainder_near, a, b)),
    "ABS": (1, lambda x: x.copy_abs()),
}
_FUNC_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789")


# --------------------------------------------------------------------------- entry point


def _describe(token: _Token) -> str:
    return "$end" if token.type is _T.END else f"'{token.type.value}'"


def evaluate(
    text: str,
    *,
    warn: Warn | None = None,
    call_function: FunctionCall | None = None,
) -> str:
    """Evaluate the inside of ``$[...]`` (already substituted) and return the result text.

    ``call_function(name, args)`` serves dial plan functions called inside the expression
    (``$[LEN(abc) + 1]``): it gets the name and the arguments joined with ``,`` and returns the
    value, or ``None`` when there is no such function.
    """
    say = warn or _ignore
    text = text.split("\0", 1)[0]
    parser = _Parser(text, say, call_function)
    try:
        value = parser.parse()
    except _SyntaxError as e:
        expecting = ", expecting $end" if e.partial is not None else ""
        say(
            f"ast_yyerror(): syntax error: syntax error, unexpected {_describe(e.token)}"
            f"{expecting}; Input:\n{text}\n{' ' * e.token.pos}^"
        )
        if e.partial is None:
            return "0"
        value = e.partial
    return _to_string(value)
