"""A literal prefilter for the emergency regexes. Each regex costs ~0.2 ms per 10,000
characters even when nothing matches, and there are dozens: from the regex we take literals
that every match must contain (e.g. 疼 or 痛 for chest pain) and run the regex only when the text
has them, a cheap substring test. tests/core/safety checks that prefiltered and unfiltered
matching agree.

The regex is read by the small reader below, not by CPython's private `re._parser`: it knows
the syntax rule files use (literals, escapes, classes, groups, look-arounds, quantifiers,
alternation) and gives up on anything else (back-references, conditionals, verbose or
case-insensitive flags). A regex it gives up on gets no prefilter and always runs, so this
never hides a match; it only makes that regex slower."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

_MAX_CLASS_LITERALS = 16  # a character class larger than this is not worth testing


class _Unsupported(Exception):
    """Syntax the reader does not analyse: the regex gets no prefilter."""


# --- the regex, read into a small tree ---------------------------------------------------


@dataclass(frozen=True)
class _Lit:
    char: str


@dataclass(frozen=True)
class _Class:
    chars: frozenset[str] | None  # what it matches; None: unknown or too many (., \s, [^x])
    written: tuple[str, ...] = ()  # single characters as written, for the upper-case check


@dataclass(frozen=True)
class _ZeroWidth:  # ^ $ \b \A \Z and look-arounds: no characters of their own
    body: _Alt | None = None


@dataclass(frozen=True)
class _Group:
    body: _Alt
    add_ignore_case: bool = False
    del_ignore_case: bool = False


@dataclass(frozen=True)
class _Repeat:
    item: _Node
    min: int


_Node: TypeAlias = _Lit | _Class | _ZeroWidth | _Group | _Repeat
_Alt: TypeAlias = tuple[tuple[_Node, ...], ...]  # branches, each a sequence

_QUANTIFIER = re.compile(r"\{(\d*)(,\d*)?\}")
_FLAGS = re.compile(r"\(\?([aiLmsux]*)(?:-([imsx]+))?([:)])")
_CHAR_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}


class _Reader:
    def __init__(self, regex: str) -> None:
        self.s = regex
        self.i = 0
        self.ignore_case = False  # the whole regex, from a global (?i)
        self.uses_ignore_case = False  # anywhere, global or scoped

    def read(self) -> _Alt:
        alt = self._alternation()
        if self.i != len(self.s):  # an unbalanced ")": the regex would not have compiled
            raise _Unsupported
        return alt

    def _peek(self, n: int = 1) -> str:
        return self.s[self.i : self.i + n]

    def _alternation(self) -> _Alt:
        branches = [self._sequence()]
        while self._peek() == "|":
            self.i += 1
            branches.append(self._sequence())
        return tuple(branches)

    def _sequence(self) -> tuple[_Node, ...]:
        items: list[_Node] = []
        while (c := self._peek()) and c not in "|)":
            items.append(self._quantified(self._atom()))
        return tuple(items)

    def _quantified(self, node: _Node) -> _Node:
        while True:
            c = self._peek()
            if c in ("*", "?"):
                self.i += 1
                node = _Repeat(node, 0)
            elif c == "+":
                self.i += 1
                node = _Repeat(node, 1)
            elif c == "{" and (m := _QUANTIFIER.match(self.s, self.i)) and m.group(0) != "{}":
                self.i = m.end()
                node = _Repeat(node, int(m.group(1) or 0))
            else:
                return node
            if self._peek() in ("?", "+"):  # lazy or possessive: the same characters
                self.i += 1

    def _atom(self) -> _Node:
        c = self._peek()
        self.i += 1
        if c == "(":
            return self._group()
        if c == "[":
            return self._class()
        if c == ".":
            return _Class(None)
        if c in ("^", "$"):
            return _ZeroWidth()
        if c == "\\":
            return self._escape()
        if c in ("*", "+", "?") or (
            c == "{" and self._peek() != "}" and _QUANTIFIER.match(self.s, self.i - 1)
        ):
            raise _Unsupported  # nothing to repeat: the regex would not have compiled
        return _Lit(c)

    def _group(self) -> _Node:
        if self._peek() != "?":
            return self._close(_Group(self._alternation()))  # a capturing group
        rest = self.s[self.i + 1 : self.i + 4]
        if rest.startswith((":", ">")):  # (?:...) and the atomic (?>...)
            self.i += 2
            return self._close(_Group(self._alternation()))
        if rest.startswith(("=", "!", "<=", "<!")):  # look-ahead, look-behind
            self.i += 2 if rest[0] in "=!" else 3
            return self._close(_ZeroWidth(self._alternation()))
        if rest.startswith("P<"):
            end = self.s.find(">", self.i)
            if end < 0:
                raise _Unsupported
            self.i = end + 1
            return self._close(_Group(self._alternation()))
        if rest.startswith("#"):
            end = self.s.find(")", self.i)
            if end < 0:
                raise _Unsupported
            self.i = end + 1
            return _ZeroWidth()
        m = _FLAGS.match(self.s, self.i - 1)
        if m is None:  # (?P=name), (?(1)...), anything newer
            raise _Unsupported
        add, remove, closing = m.group(1), m.group(2) or "", m.group(3)
        if "x" in add + remove:  # verbose: whitespace and comments mean something else
            raise _Unsupported
        self.i = m.end()
        self.uses_ignore_case |= "i" in add
        if closing == ")":  # global flags, (?i)
            self.ignore_case |= "i" in add
            return _ZeroWidth()
        body = self._alternation()
        return self._close(_Group(body, "i" in add, "i" in remove))

    def _close(self, node: _Node) -> _Node:
        if self._peek() != ")":
            raise _Unsupported
        self.i += 1
        return node

    def _escape(self) -> _Node:
        c = self._peek()
        if c in ("b", "B", "A", "Z"):
            self.i += 1
            return _ZeroWidth()
        if c in ("d", "D", "s", "S", "w", "W"):
            self.i += 1
            return _Class(None)
        return _Lit(self._escaped_char())

    def _escaped_char(self) -> str:
        """The character after a backslash; the class escapes are the caller's."""
        c = self._peek()
        if not c or c.isdigit():  # back-reference or octal
            raise _Unsupported
        self.i += 1
        if c in _CHAR_ESCAPES:
            return _CHAR_ESCAPES[c]
        if c in _HEX_DIGITS:
            digits = self._peek(_HEX_DIGITS[c])
            self.i += len(digits)
            return chr(int(digits, 16))
        if c == "N" and self._peek() == "{":
            end = self.s.find("}", self.i)
            if end < 0:
                raise _Unsupported
            name, self.i = self.s[self.i + 1 : end], end + 1
            return unicodedata.lookup(name)
        if c.isascii() and c.isalnum():  # an escape the reader does not know
            raise _Unsupported
        return c

    def _class(self) -> _Node:
        negated = self._peek() == "^"
        self.i += negated
        singles: list[str] = []
        ranges: list[tuple[str, str]] = []
        known = not negated
        first = True
        while True:
            c = self._peek()
            if not c:
                raise _Unsupported
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            low = self._class_char()
            if low is None:
                known = False
                continue
            if self._peek() == "-" and len(self._peek(2)) == 2 and self._peek(2) != "-]":
                self.i += 1
                high = self._class_char()
                if high is None:
                    raise _Unsupported  # a bad range: the regex would not have compiled
                ranges.append((low, high))
            else:
                singles.append(low)
        chars: set[str] = set(singles)
        for low, high in ranges:
            if ord(high) - ord(low) >= _MAX_CLASS_LITERALS:
                known = False
            else:
                chars.update(chr(o) for o in range(ord(low), ord(high) + 1))
        if negated:  # [^A] matches lower-case text: not an upper-case literal
            return _Class(None)
        if not known or len(chars) > _MAX_CLASS_LITERALS:
            return _Class(None, tuple(singles))
        if len(chars) == 1 and not ranges:
            return _Lit(singles[0])
        return _Class(frozenset(ch.lower() for ch in chars), tuple(singles))

    def _class_char(self) -> str | None:
        """One member of a class; None for a category (\\s, \\w, \\d and their negations)."""
        c = self._peek()
        self.i += 1
        if c != "\\":
            return c
        e = self._peek()
        if e in ("d", "D", "s", "S", "w", "W"):
            self.i += 1
            return None
        if e == "b":  # backspace inside a class
            self.i += 1
            return "\b"
        return self._escaped_char()


# --- what every match must contain -------------------------------------------------------

_Needs = list[frozenset[str]]  # every set must have one of its literals in the text


def _best(needs: _Needs) -> frozenset[str] | None:
    # Longer literals and fewer of them make a sharper test.
    return max(needs, key=lambda n: (min(map(len, n)), -len(n)), default=None)


def _shortest(literals: frozenset[str]) -> frozenset[str]:
    # {胸, 胸口}: 胸口 in the text means 胸 is too, so 胸 alone is the same test.
    return frozenset(a for a in literals if not any(b != a and b in a for b in literals))


def _alternation_need(alt: _Alt) -> frozenset[str] | None:
    bests = [_best(_sequence_needs(branch)) for branch in alt]
    if any(b is None for b in bests):
        return None  # some branch can match without a known literal
    return _shortest(frozenset().union(*(b for b in bests if b is not None)))


def _sequence_needs(items: Sequence[_Node]) -> _Needs:
    needs: _Needs = []
    run: list[str] = []

    def flush() -> None:
        if run:
            needs.append(frozenset({"".join(run).lower()}))
            run.clear()

    for item in items:
        if isinstance(item, _Lit):
            run.append(item.char)
            continue
        if isinstance(item, _ZeroWidth):
            continue  # the characters either side are adjacent in the match
        flush()
        sub: frozenset[str] | None = None
        if isinstance(item, _Group):
            sub = _alternation_need(item.body)
        elif isinstance(item, _Repeat) and item.min >= 1:
            sub = _best(_sequence_needs([item.item]))
        elif isinstance(item, _Class):
            sub = item.chars
        if sub:
            needs.append(sub)
    flush()
    return needs


def prefilter(alternatives: Sequence[str]) -> tuple[tuple[frozenset[str], ...], ...] | None:
    """Any-of (all-of (any-of literals)) that every match of any alternative satisfies;
    None when some alternative cannot be analysed (it then always runs)."""
    result: list[tuple[frozenset[str], ...]] = []
    for alternative in alternatives:
        try:
            reader = _Reader(alternative)
            alt = reader.read()
        except (_Unsupported, ValueError, KeyError):  # a bad \x or \N{...}
            return None
        if reader.uses_ignore_case:
            return None  # 'i' also matches 'ı' and 'K' the Kelvin sign: no literal test
        # A top-level "a|b" is several alternatives, each with its own needs.
        branches = [_sequence_needs(b) for b in alt]
        if any(not b for b in branches):
            return None  # some alternative can match without a known literal
        result.extend(tuple(b) for b in branches)
    return tuple(result)


def upper_case_literals(regex: str) -> str:
    """Upper-case letters the regex matches literally, case-sensitively ("" if none)."""
    try:
        reader = _Reader(regex)
        alt = reader.read()
    except (_Unsupported, ValueError, KeyError):
        return ""
    if reader.ignore_case:
        return ""
    found: list[str] = []

    def upper(chars: Sequence[str]) -> None:
        found.extend(ch for ch in chars if ch != ch.lower())

    def walk(node: _Node, ignore_case: bool) -> None:
        if isinstance(node, _Lit):
            if not ignore_case:
                upper([node.char])
        elif isinstance(node, _Class):
            if not ignore_case:
                upper(node.written)
        elif isinstance(node, _Repeat):
            walk(node.item, ignore_case)
        elif isinstance(node, _Group):
            scoped = (ignore_case or node.add_ignore_case) and not node.del_ignore_case
            walk_alt(node.body, scoped)
        elif node.body is not None:  # a look-around
            walk_alt(node.body, ignore_case)

    def walk_alt(alt: _Alt, ignore_case: bool) -> None:
        for branch in alt:
            for node in branch:
                walk(node, ignore_case)

    walk_alt(alt, False)
    return "".join(dict.fromkeys(found))
