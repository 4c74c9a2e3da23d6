"""Name matching between training identities and benchmark identities.

Normalisation (both sides): accents folded to ASCII (NFKD, combining marks dropped, and ø->o, ł->l,
đ->d, ð->d, ß->ss, æ->ae, œ->oe, þ->th, ı->i; any other non-ASCII character dropped); text in
``(...)``/``[...]`` dropped; ``_`` is a space; ``-`` is removed (``Jean-Claude`` -> ``JeanClaude``);
apostrophes and quotes are removed (``O'Brien`` -> ``OBrien``); a name with a hyphen is also tried with
the hyphen as a space (``Ali_al-Naimi`` ~ ``Ali_Naimi``); any other character that is not a letter,
digit or ``.`` separates words. A generational suffix (``Jr``, ``Sr``, ``II``, ``III``, ``IV``, with or
without a dot) ending a name of 3 or more words is dropped, so the last word is the family name. Then, as
in happynear/FaceDatasets ``match_names.py``, a word of 2 or 3 characters that are all capitals is read
as initials (``BD`` -> ``B D``).

A word is an *initial* when it has one character or its second character is ``.`` (``J.``, ``J.K.``);
two words match when either is an initial and their first letters agree (case-insensitive), or else when
they are equal ignoring case and dots.

Rules, strongest first (a pair gets the strongest that holds):

- ``exact``: the same letters and digits in the same order, ignoring case, accents, spacing and
  punctuation (``Norm_MacDonald`` = ``Norm Macdonald``, ``Jean-Claude Van Damme`` = ``Jean Claude Van
  Damme``);
- ``reordered``: the same words (2 or more) in another order (``Ziyi_Zhang`` = ``Zhang_Ziyi``);
  a dropped suffix does not count (``Roy_Williams_Jr.`` ~ ``Roy_Williams`` is ``first_last``);
- ``first_last``: happynear's rule without initials: first words equal and last words equal, or the first
  of each equals the last of the other; middle words ignored (``Laura_Harring`` = ``Laura_Elena_Harring``);
- ``prefix``: one name (2 or more words) is the start of the other, e.g. an added married name
  (``Aishwarya_Rai`` ~ ``Aishwarya_Rai_Bachchan``, ``Kimora_Lee`` ~ ``Kimora_Lee_Simmons``; both in
  happynear's hand-checked lists, which happynear's own rule misses);
- ``initials``: happynear's rule where an initial stands for a word (``Mary_J._Blige`` = ``Mary_Blige``
  is ``first_last``; ``A.R._Rahman`` = ``Abdul_Rahman`` is ``initials``). A one-word name only matches a
  one-word name.

Known false positives (happynear's CASIA-WebFace x LFW log, ``CASIA/lfw_log.txt``, and these rules on
the same lists): namesakes under ``exact`` (two people called Jesse James); ``first_last``:
``John_Carroll_Lynch`` ~ ``John_Lynch``, ``Anna_Deavere_Smith`` ~ ``Anna_Nicole_Smith``, father and son
once the suffix is dropped (``Roy_Williams_Jr.`` ~ ``Roy_Williams``); ``prefix``: a name made of two
given names (``Juan_Carlos`` ~ ``Juan_Carlos_Flores``, ``Sean_Patrick`` ~ ``Sean_Patrick_Thomas``);
``initials``: ``BD_Wong`` ~
``Bernice_Wong``, ``J._Ben_Sykes`` ~ ``S_Jayakumar`` (reversed order, initials at both ends),
``C.S._Lee`` ~ ``Lee_Chang-dong``, and a name read as initials (``LL_Cool_J``, ``RZA``, ``DJ_AM``)
matches every name with those first letters (``LL_Cool_J`` ~ ``Jay_Leno``; the log shows one such match
per name only because happynear's script rewrote the name after its first hit). Dropping the suffix
removes the log's ``John_Enos_III`` ~ ``John_Paul_II`` and ``Vitamin_C`` ~ ``Charles_Chandler_IV``.
Weaker rules find more true overlaps and more false ones: review the ranked table before trusting a
removal that rests on ``initials`` alone.

Matching all training names against all benchmark names is done through hash indexes that return
exactly the pairs the rules accept (no quadratic scan): see :class:`NameIndex`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

from facebench.registry import Registry

NAME_RULES: Registry[int] = Registry("name rule", [
    (rule, rank) for rank, rule in enumerate(("exact", "reordered", "first_last", "prefix", "initials"))
])
"""Rule -> its rank (0 = strongest), strongest first; ``--name-rule R`` accepts R and every stronger rule."""

_FOLD = str.maketrans(
    {
        "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D",
        "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "Th", "ı": "i",
    }
)
_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_DROP = str.maketrans("", "", "-'\u2019\u2018`\"")
_SEPARATORS = re.compile(r"[^A-Za-z0-9.]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
SUFFIXES = frozenset({"jr", "jnr", "sr", "snr", "ii", "iii", "iv"})
"""Generational suffixes: dropped from the end of a name of 3 or more words before the word rules."""


def fold_ascii(text: str) -> str:
    """``text`` with accents folded to ASCII by the rule in the module docstring."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii", "ignore").decode("ascii")


@dataclass(frozen=True)
class Word:
    """One word of a name: ``key`` (lowercase, dots removed), ``letter`` (its first letter), ``initial``."""

    text: str
    key: str
    letter: str
    initial: bool


def _word(text: str) -> Word:
    return Word(text, text.replace(".", "").lower(), text[0].lower(), len(text) == 1 or text[1] == ".")


@dataclass(frozen=True)
class ParsedName:
    """A name split into words, with the keys the rules compare."""

    raw: str
    words: tuple[Word, ...]
    compact: str
    bag: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.compact)

    @property
    def keys(self) -> tuple[str, ...]:
        """The word keys in order."""
        return tuple(w.key for w in self.words)


def _parse(raw: str, text: str, compact: str) -> ParsedName:
    tokens = [t.lstrip(".") for t in _SEPARATORS.sub(" ", text).split() if any(c.isalnum() for c in t)]
    while len(tokens) > 2 and tokens[-1].replace(".", "").lower() in SUFFIXES:
        tokens.pop()
    words: list[Word] = []
    for token in tokens:
        if 2 <= len(token) < 4 and token.isalpha() and token.isupper():
            words.extend(_word(c) for c in token)
        else:
            words.append(_word(token))
    return ParsedName(raw, tuple(words), compact, tuple(sorted(w.key for w in words)))


def parse_name(raw: str) -> ParsedName:
    """Normalise and split ``raw`` by the rules in the module docstring (hyphenated words joined)."""
    return parse_variants(raw)[0]


def parse_variants(raw: str) -> tuple[ParsedName, ...]:
    """``raw`` parsed with hyphenated words joined (happynear) and, when it has a hyphen, also split.

    ``Ali_al-Naimi`` gives ``Ali alNaimi`` and ``Ali al Naimi``, so it meets ``Ali_Naimi`` under
    ``first_last``; both variants share the ``exact`` key.
    """
    base = _BRACKETS.sub(" ", fold_ascii(raw)).replace("_", " ")
    compact = _NOT_ALNUM.sub("", base.translate(_DROP).lower())
    joined = _parse(raw, base.translate(_DROP), compact)
    if "-" not in base:
        return (joined,)
    return joined, _parse(raw, base.replace("-", " ").translate(_DROP), compact)


def words_match(a: Word, b: Word) -> bool:
    """happynear's word rule: an initial matches a word with its first letter; else equal ignoring case."""
    if a.initial or b.initial:
        return a.letter == b.letter
    return a.key == b.key


def name_rule(a: ParsedName, b: ParsedName) -> str | None:
    """The strongest rule under which ``a`` and ``b`` name the same person, or ``None``."""
    if not a or not b:
        return None
    if a.compact == b.compact:
        return "exact"
    wa, wb = a.words, b.words
    if len(wa) >= 2 and a.bag == b.bag and a.keys != b.keys:
        return "reordered"
    if (len(wa) == 1) != (len(wb) == 1):
        return None
    if len(wa) == 1:
        return "initials" if words_match(wa[0], wb[0]) else None
    pairs = (((wa[0], wb[0]), (wa[-1], wb[-1])), ((wa[0], wb[-1]), (wa[-1], wb[0])))
    with_initials = False
    for (x0, y0), (x1, y1) in pairs:
        if words_match(x0, y0) and words_match(x1, y1):
            if not (x0.initial or y0.initial or x1.initial or y1.initial):
                return "first_last"
            with_initials = True
    ka, kb = a.keys, b.keys
    short, long_ = (ka, kb) if len(ka) < len(kb) else (kb, ka)
    if len(short) >= 2 and len(short) < len(long_) and long_[: len(short)] == short:
        return "prefix"
    return "initials" if with_initials else None


def match_names(a: str, b: str) -> str | None:
    """The strongest rule under which names ``a`` and ``b`` match, over their hyphen variants, or ``None``."""
    best: str | None = None
    for pa in parse_variants(a):
        for pb in parse_variants(b):
            rule = name_rule(pa, pb)
            if rule is not None and (best is None or rule_rank(rule) < rule_rank(best)):
                best = rule
    return best


def rule_rank(rule: str) -> int:
    """Position of ``rule`` in :data:`NAME_RULES` (0 = strongest)."""
    return NAME_RULES.get(rule)


def _store_keys(w: Word) -> tuple[tuple[str, str], ...]:
    return (("I", w.letter),) if w.initial else (("F", w.key), ("L", w.letter))


def _query_keys(w: Word) -> tuple[tuple[str, str], ...]:
    return (("L", w.letter), ("I", w.letter)) if w.initial else (("F", w.key), ("I", w.letter))


class NameIndex:
    """Benchmark names indexed so that a query returns exactly the names some rule accepts.

    Word keys: a full word is stored under ``(F, word)`` and ``(L, letter)``, an initial under
    ``(I, letter)``; a full word queries ``(F, word)`` and ``(I, letter)``, an initial ``(L, letter)`` and
    ``(I, letter)``. Two words share a key exactly when :func:`words_match` accepts them, so the
    first/last-word index (keyed by both words) gives happynear's matches in either order; the
    ``exact``, ``reordered`` and ``prefix`` rules have their own keys (compact text, sorted words, word
    sequences and their leading parts). Each candidate is then confirmed with
    :func:`name_rule`.
    """

    def __init__(self, names: Iterable[tuple[int, str]]) -> None:
        self.entries: list[tuple[int, ParsedName]] = []
        self._compact: dict[str, list[int]] = {}
        self._bag: dict[tuple[str, ...], list[int]] = {}
        self._single: dict[tuple[str, str], list[int]] = {}
        self._ends: dict[tuple[tuple[str, str], tuple[str, str]], list[int]] = {}
        self._full: dict[tuple[str, ...], list[int]] = {}
        self._prefix: dict[tuple[str, ...], list[int]] = {}
        for owner, raw in names:
            for parsed in parse_variants(raw):
                if parsed:
                    self._add(owner, parsed)

    def _add(self, owner: int, parsed: ParsedName) -> None:
        e = len(self.entries)
        self.entries.append((owner, parsed))
        self._compact.setdefault(parsed.compact, []).append(e)
        if len(parsed.words) >= 2:
            keys = parsed.keys
            self._bag.setdefault(parsed.bag, []).append(e)
            self._full.setdefault(keys, []).append(e)
            for n in range(2, len(keys)):
                self._prefix.setdefault(keys[:n], []).append(e)
            for k0 in _store_keys(parsed.words[0]):
                for k1 in _store_keys(parsed.words[-1]):
                    self._ends.setdefault((k0, k1), []).append(e)
        elif parsed.words:
            for k in _store_keys(parsed.words[0]):
                self._single.setdefault(k, []).append(e)

    def __len__(self) -> int:
        return len(self.entries)

    def candidates(self, name: ParsedName) -> set[int]:
        """Entries some rule may accept for ``name`` (a superset of the matches; usually equal)."""
        found: set[int] = set(self._compact.get(name.compact, ()))
        words = name.words
        if len(words) >= 2:
            keys = name.keys
            found.update(self._bag.get(name.bag, ()))
            found.update(self._prefix.get(keys, ()))
            for n in range(2, len(keys)):
                found.update(self._full.get(keys[:n], ()))
            first, last = words[0], words[-1]
            for q0 in _query_keys(first):
                for q1 in _query_keys(last):
                    found.update(self._ends.get((q0, q1), ()))
                    found.update(self._ends.get((q1, q0), ()))
        elif words:
            for q in _query_keys(words[0]):
                found.update(self._single.get(q, ()))
        return found

    def match(self, raw: str, max_rank: int = len(NAME_RULES) - 1) -> dict[int, tuple[str, str]]:
        """``{owner: (benchmark name, rule)}``: the strongest rule (rank <= ``max_rank``) per matching owner."""
        best: dict[int, tuple[str, str]] = {}
        for parsed in parse_variants(raw):
            if not parsed:
                continue
            for e in sorted(self.candidates(parsed)):
                owner, other = self.entries[e]
                rule = name_rule(parsed, other)
                if rule is None or rule_rank(rule) > max_rank:
                    continue
                old = best.get(owner)
                if old is None or rule_rank(rule) < rule_rank(old[1]):
                    best[owner] = (other.raw, rule)
        return best


@dataclass(frozen=True)
class NameMatch:
    """Training identity ``train`` and benchmark identity ``bench`` share a name under ``rule``."""

    train: int
    bench: int
    rule: str
    train_name: str
    bench_name: str


def match_identities(
    train_names: Sequence[Sequence[str]],
    bench_names: Sequence[Sequence[str]],
    name_rule_limit: str = "initials",
) -> list[NameMatch]:
    """Every (training identity, benchmark identity) pair with a name match, at its strongest rule.

    ``train_names[i]`` / ``bench_names[j]`` are all the names (aliases) of identity i / j. Rules weaker
    than ``name_rule_limit`` are not reported. Ties between aliases keep the first alias pair found.
    """
    limit = rule_rank(name_rule_limit)
    index = NameIndex((j, n) for j, names in enumerate(bench_names) for n in names)
    best: dict[tuple[int, int], NameMatch] = {}
    for i, names in enumerate(train_names):
        for raw in names:
            for j, (bench_raw, rule) in sorted(index.match(raw, limit).items()):
                key = (i, j)
                old = best.get(key)
                if old is None or rule_rank(rule) < rule_rank(old.rule):
                    best[key] = NameMatch(i, j, rule, raw, bench_raw)
    return [best[k] for k in sorted(best)]
