"""The 101 French départements and the text matcher that finds them in card, label and list names.

Data: ``syncd/rules/data/departements.csv`` is a verbatim copy of ``sources/departements.csv`` from
``datagouv/decoupage-administratif`` (commit a0e96f6f4f1c688b08453344709fc502eb3d4071, INSEE
*Code officiel géographique*), published under the Licence Ouverte / Open Licence (Etalab).
It is read once, as package data, and cached.

Matching rules (pure functions, no I/O beyond the package data):

* Text is folded before matching: Unicode NFKD with accents dropped, lower case, every
  apostrophe variant made ``'`` and every hyphen variant ``-``. Inside a name, spaces, hyphens,
  apostrophes and underscores are interchangeable (``Côtes d'Armor`` = ``cotes-darmor``),
  ``St``/``St.`` stands for ``Saint`` and ``Ste`` for ``Sainte``. Names match on word
  boundaries only (``Ain`` is not found in ``Maintenance``, ``Aude`` not in ``Claude``).
* The longest name wins and the shorter name inside it is not reported (``Haute-Loire`` is 43,
  never also 42). A few region names are consumed without a result so that the département
  inside them is not reported: ``Auvergne-Rhône-Alpes``, ``Rhône-Alpes``, ``Nord-Pas-de-Calais``,
  ``Pays de la Loire``, ``Centre-Val de Loire``, ``Val de Loire``.
* A code (``01``…``95``, ``2A``, ``2B``, ``971``…``974``, ``976``) counts only in an explicit
  form: ``(77)``, ``[77]``, ``77 -``/``77 –`` at the start of the text, ``CD77``/``CD 77``/
  ``CD-77`` (``CG77`` too), ``dep 62``/``dép. 62``/``département 62``/``dpt n°62``, or a code
  directly beside that same département's name (``62 Pas-de-Calais``, ``Somme (80)``,
  ``80 - Somme``). A bare number in prose, a ticket ``#77``, a version ``v2.0``, a date
  ``26/11``, an amount ``77 €`` or a percentage never does. ``2A``/``2B`` and the overseas
  three-digit codes follow the same explicit forms: a bare ``2A`` (``Phase 2A``) is not enough.
* Names that are also everyday words (:data:`AMBIGUOUS_CODES`, decided word by word from a
  French dictionary in :data:`NAME_DECISIONS`, see ``docs/departements.md``) count only with a
  clear cue:
  in brackets (``[Somme]``, ``(Somme)``), beside their own code (``Somme (80)``, ``80 - Somme``),
  after ``département``/``CD``/``conseil départemental``/``conseil général``/``île`` with an
  optional ``de la``/``du``/``des``/``de l'`` (``département de la Somme``, ``CD de la Manche``,
  ``île de la Réunion``), or when the whole text is the name (``Somme``, ``La Somme``,
  ``[Manche]``). Prose never links them: ``la somme des RDV``, ``un lot de tests``,
  ``le var est null``, ``Nord-Est``, ``cher usager``, ``ain't``.
* ``Réunion`` is also the word for a meeting, so it is ambiguous too. ``La Réunion`` with the
  article and a capital ``R`` counts as the name anywhere (``Déploiement à La Réunion``,
  ``LA REUNION``); ``la réunion de lancement`` and ``Réunion du 26/11`` do not. A text that is
  only ``Réunion`` or ``la réunion`` is the département (it is the whole title).
* Rivers, mountains and other proper nouns (``Loire``, ``Tarn``, ``Oise``, ``Doubs``, ``Eure``,
  ``Gard``, ``Gers``, ``Indre``, ``Meuse``, ``Marne``, ``Rhône``, ``Jura``…) are no French
  word: a plain mention links, in every spelling (``Loire – bilan du trimestre``,
  ``TARN : comité de suivi``, ``Oise et Aisne : réunion commune``).
* A name that is the river of a hyphenated town name is the town, not the département:
  ``Nogent-sur-Marne`` (94), ``Auvers-sur-Oise`` (95), ``Loire-sur-Rhône`` (69) link to nothing
  (a hyphen beside ``sur``/``sous``, as communes are written). ``Marne-la-Vallée`` (77) is
  consumed like the region names.
* :func:`match_title_exact` also accepts a text that is only a code (``77``, ``(77)``, ``CD77``):
  a dashboard card, label or list may be titled that way. :func:`match_departments` does not
  count a bare ``77`` (it could be anything in a card title).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from typing import Final

__all__ = [
    "AMBIGUOUS_CODES",
    "NAME_DECISIONS",
    "Department",
    "DepartmentMatch",
    "all_departments",
    "by_code",
    "departments_named",
    "fold",
    "match_departments",
    "match_title_exact",
]


@dataclass(frozen=True)
class Department:
    """One département: INSEE code (``"01"``, ``"2A"``, ``"974"``) and its name with accents."""

    code: str
    name: str


@dataclass(frozen=True)
class DepartmentMatch:
    """A département found in a text.

    ``reason`` is ``"code"`` or ``"name"``: how its first mention was recognised; ``matched`` is
    that mention as written in the text.
    """

    code: str
    reason: str
    matched: str


#: Every one-word département name, decided word by word: does it need a cue? Each was looked up
#: in a French dictionary (Debian's ``wfrench`` 1.2.7, 346,205 lower-case words: the common
#: vocabulary, no proper noun). A name needs a cue (``True``) when it is also a French word that
#: a card title may use in prose, or a token that card text commonly carries for another reason
#: (a first name, an English word on the product board). A name that is only a proper noun
#: (most rivers) never needs one. Names of two words or more (``Seine-et-Marne``,
#: ``Côte-d'Or``, ``Pas-de-Calais``) are never prose as a whole and need no cue either; ``La
#: Réunion`` is decided apart (see :data:`AMBIGUOUS_CODES`).
NAME_DECISIONS: Final[dict[str, tuple[bool, str]]] = {
    # -- in the dictionary, and common in prose: a cue is needed -------------------------------
    "03": (True, "Allier: the verb 'allier' (to combine): 'allier les deux écrans'"),
    "10": (True, "Aube: 'aube' (dawn): 'à l'aube du lancement'"),
    "18": (True, "Cher: 'cher' (dear, expensive): 'Cher usager', 'trop cher'"),
    "23": (True, "Creuse: 'creuse' (hollow; 'il creuse'): 'semaine creuse'"),
    "40": (True, "Landes: 'landes' (moors), a plain noun that reads as prose"),
    "46": (True, "Lot: 'lot' (batch, lot): 'un lot de tests', 'Lot 2'"),
    "50": (True, "Manche: 'manche' (sleeve, round): 'manche courte', 'première manche'"),
    "59": (True, "Nord: 'nord' (north): 'Nord-Est', 'au nord de la ville'"),
    "61": (True, "Orne: the verb 'orner' ('une bannière orne la page')"),
    "80": (True, "Somme: 'somme' (sum): 'la somme des RDV'"),
    "83": (True, "Var: 'var' (a unit), and the 'var' of code on the product board"),
    "86": (True, "Vienne: 'vienne' (subjunctive of venir): 'qu'il vienne'; also Vienna"),
    # -- in the dictionary, but rare enough in a board's prose: no cue -------------------------
    "14": (False, "Calvados: 'calvados' the brandy, not a word of work titles"),
    "15": (False, "Cantal: 'cantal' the cheese, not a word of work titles"),
    "33": (False, "Gironde: 'gironde' (shapely), familiar and never in work titles"),
    "39": (False, "Jura: 'jura' (passé simple of jurer), absent from titles"),
    "51": (False, "Marne: 'marne' (marl), a geology term; 'Marne-la-Vallée' is blocked apart"),
    "55": (False, "Meuse: 'meuse' (a gap in a hedge, hunting), absent from titles"),
    "75": (False, "Paris: 'paris' (bets), while 'Paris' in a title is the city"),
    # -- not in the dictionary, but common in card text: a cue is needed ----------------------
    "01": (True, "Ain: no French word, but 'ain't' on the product board, a 3-letter token"),
    "11": (True, "Aude: no French word, but a common first name ('Point avec Aude')"),
    # -- not in the dictionary: proper nouns (rivers, mountains, regions), no cue -------------
    "02": (False, "Aisne: river"),
    "07": (False, "Ardèche: river"),
    "08": (False, "Ardennes: massif"),
    "09": (False, "Ariège: river"),
    "12": (False, "Aveyron: river"),
    "16": (False, "Charente: river"),
    "19": (False, "Corrèze: river"),
    "24": (False, "Dordogne: river"),
    "25": (False, "Doubs: river"),
    "26": (False, "Drôme: river"),
    "27": (False, "Eure: river (no confusion with 'heure', which has its h)"),
    "29": (False, "Finistère: proper noun"),
    "30": (False, "Gard: river"),
    "32": (False, "Gers: river"),
    "34": (False, "Hérault: river"),
    "36": (False, "Indre: river"),
    "38": (False, "Isère: river"),
    "42": (False, "Loire: river; the regions that contain it are blocked apart"),
    "45": (False, "Loiret: river"),
    "48": (False, "Lozère: mountain"),
    "53": (False, "Mayenne: river"),
    "56": (False, "Morbihan: gulf"),
    "57": (False, "Moselle: river"),
    "58": (False, "Nièvre: river"),
    "60": (False, "Oise: river"),
    "69": (False, "Rhône: river; the regions that contain it are blocked apart"),
    "72": (False, "Sarthe: river"),
    "73": (False, "Savoie: historic region"),
    "78": (False, "Yvelines: forest"),
    "81": (False, "Tarn: river"),
    "84": (False, "Vaucluse: fountain"),
    "85": (False, "Vendée: river"),
    "88": (False, "Vosges: massif"),
    "89": (False, "Yonne: river"),
    "91": (False, "Essonne: river"),
    "971": (False, "Guadeloupe: island"),
    "972": (False, "Martinique: island"),
    "973": (False, "Guyane: territory"),
    "976": (False, "Mayotte: island"),
}

#: Départements whose name links only with a clear cue (see the module docstring): the one-word
#: names decided so in :data:`NAME_DECISIONS`, and La Réunion ('réunion', a meeting).
AMBIGUOUS_CODES: Final[dict[str, str]] = {
    **{code: why for code, (needs_cue, why) in NAME_DECISIONS.items() if needs_cue},
    "974": "La Réunion: 'réunion' (meeting)",
}

_REUNION: Final = "974"
# Place names that contain a département's name without naming it: consumed without a result.
_REGION_BLOCKERS: Final = (
    "Auvergne-Rhône-Alpes",
    "Rhône-Alpes",
    "Nord-Pas-de-Calais",
    "Pays de la Loire",
    "Centre-Val de Loire",
    "Val de Loire",
    "Marne-la-Vallée",  # a new town of Seine-et-Marne (77), not the Marne (51)
)
_ARTICLES: Final = frozenset({"le", "la", "les", "l"})
_ELIDED: Final = frozenset({"d", "l"})
_APOSTROPHES: Final = "'’‘ʼ`´"
#: How many distinct texts (card titles, labels, list names) the matcher remembers per process:
#: a text is matched once, not at every report. Matching is a pure function of the text, so a
#: remembered answer is the answer; the bound keeps a long-lived daemon's memory flat (about
#: 0.3 KB per text), above the titles of the largest mirror syncd is sized for (100,000 cards).
MEMO_SIZE: Final = 1 << 17
_HYPHENS: Final = "-‐‑‒"


# --------------------------------------------------------------------------- data


@cache
def all_departments() -> tuple[Department, ...]:
    """The 101 départements, sorted by code (``01`` … ``2A``, ``2B`` … ``976``)."""
    resource = files("syncd.rules") / "data" / "departements.csv"
    text = resource.read_bytes().decode("utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = [Department(code=row["DEP"].strip(), name=row["LIBELLE"].strip()) for row in reader]
    return tuple(sorted(rows, key=lambda d: d.code))


@cache
def _by_code_table() -> dict[str, Department]:
    return {d.code: d for d in all_departments()}


def by_code(code: str) -> Department | None:
    """The département with this INSEE code; ``"2a"`` → 2A, ``"7"`` → 07, unknown → ``None``."""
    key = code.strip().upper()
    if len(key) == 1 and key.isdigit():
        key = "0" + key
    return _by_code_table().get(key)


# --------------------------------------------------------------------------- folding


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    if ch.isspace():
        return " "
    if ch in _APOSTROPHES:
        return "'"
    if ch in _HYPHENS:
        return "-"
    out = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    out = out.lower()
    if not out.isascii():  # lower() may reintroduce a combining mark (İ → i̇)
        out = "".join(c for c in unicodedata.normalize("NFKD", out) if not unicodedata.combining(c))
    return out


_ASCII_FOLD: Final = str.maketrans(
    {"\t": " ", "\n": " ", "\r": " ", "\v": " ", "\f": " ", "`": "'"}
)


def _fold_with_map(text: str) -> tuple[str, list[int] | None]:
    """Fold ``text``; the map gives, for each folded character, its index in ``text``.

    ``None`` means the identity map (pure ASCII input keeps its length).
    """
    if text.isascii():
        return text.lower().translate(_ASCII_FOLD), None
    parts = [_fold_char(ch) for ch in text]
    folded = "".join(parts)
    if len(folded) == len(text) and "" not in parts:  # every part is one character
        return folded, None
    index: list[int] = []
    for i, part in enumerate(parts):
        index.extend([i] * len(part))
    return folded, index


def fold(text: str) -> str:
    """``text`` folded for matching: accents dropped, lower case, apostrophes/hyphens unified."""
    return _fold_with_map(text)[0]


_KEY_SPLIT: Final = re.compile(r"[\s'_.\-]+")


def _key(folded_name: str) -> str:
    """Canonical key of a folded name: separators dropped, St → saint, leading article dropped."""
    tokens = [t for t in _KEY_SPLIT.split(folded_name) if t]
    tokens = ["saint" if t == "st" else "sainte" if t == "ste" else t for t in tokens]
    if len(tokens) > 1 and tokens[0] in _ARTICLES:
        tokens = tokens[1:]
    return "".join(tokens)


# --------------------------------------------------------------------------- patterns

_SEP: Final = r"[ '_\-]+"
_OPT_SEP: Final = r"[ '_\-]*"


def _name_pattern(name: str) -> str:
    tokens = [t for t in re.split(r"[\s'_\-]+", fold(name)) if t]
    parts: list[str] = []
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        if i == 0 and tok in _ARTICLES and not last:
            parts.append(rf"(?:{re.escape(tok)}{_SEP})?")
        elif tok in ("saint", "sainte"):
            short = "st" if tok == "saint" else "ste"
            if last:
                parts.append(rf"(?:{tok}|{short}\.?)")
            else:
                parts.append(rf"(?:{tok}{_SEP}|{short}(?:\.{_OPT_SEP}|{_SEP}))")
        elif last:
            parts.append(re.escape(tok))
        else:
            parts.append(re.escape(tok) + (_OPT_SEP if tok in _ELIDED else _SEP))
    return "".join(parts)


def _words_pattern(words: Iterable[str]) -> str:
    """A pattern of exactly these fixed words, tried longest first: what
    ``"|".join(sorted(words, key=lambda w: (-len(w), w)))`` matches, in the same order of tries,
    with the words of one length written by shared prefix (the codes: ``97[1-46]|0[1-9]|…``).
    Two words of one length never both match at one position, so only the lengths' order counts.
    The codes appear ten times in the matcher's patterns: 101 alternatives each took most of
    their compile time, which every process running the rules pays."""
    by_length: dict[int, set[str]] = {}
    for word in words:
        by_length.setdefault(len(word), set()).add(word)
    return "|".join(_same_length(by_length[n]) for n in sorted(by_length, reverse=True))


def _same_length(words: set[str]) -> str:
    """A pattern of exactly these words, all of one length (at least 1)."""
    if all(len(word) == 1 for word in words):
        return _char_class(words)
    parts = []
    for head in sorted({word[0] for word in words}):
        tail = _same_length({word[1:] for word in words if word[0] == head})
        parts.append(re.escape(head) + (f"(?:{tail})" if "|" in tail else tail))
    return "|".join(parts)


def _char_class(chars: set[str]) -> str:
    """One of these characters: ``7``, ``[ab]``, ``[1-46]`` (runs of three or more as ranges)."""
    ordered = sorted(chars)
    if len(ordered) == 1:
        return re.escape(ordered[0])
    runs: list[list[str]] = []
    for char in ordered:
        if runs and ord(char) == ord(runs[-1][-1]) + 1:
            runs[-1].append(char)
        else:
            runs.append([char])
    body = "".join(
        f"{re.escape(run[0])}-{re.escape(run[-1])}"
        if len(run) >= 3
        else "".join(map(re.escape, run))
        for run in runs
    )
    return f"[{body}]"


@dataclass(frozen=True)
class _Matcher:
    scan: re.Pattern[str]
    title: re.Pattern[str]
    start_code: re.Pattern[str]
    cue_before: re.Pattern[str]
    code_before: re.Pattern[str]
    code_after: re.Pattern[str]
    bracket_before: re.Pattern[str]
    bracket_after: re.Pattern[str]
    name_to_code: dict[str, str | None]
    folded_code_to_code: dict[str, str]


@cache
def _matcher() -> _Matcher:
    departments = all_departments()
    name_to_code: dict[str, str | None] = {}
    patterns: list[tuple[int, str]] = []
    for dep in departments:
        key = _key(fold(dep.name))
        if key in name_to_code:  # pragma: no cover - guards the data file
            raise ValueError(f"two départements share the key {key!r}")
        name_to_code[key] = dep.code
        patterns.append((len(key), _name_pattern(dep.name)))
    for region in _REGION_BLOCKERS:
        name_to_code[_key(fold(region))] = None
        patterns.append((len(_key(fold(region))), _name_pattern(region)))
    patterns.sort(key=lambda p: -p[0])  # longest first: the alternation takes the first match
    names = "|".join(p for _, p in patterns)

    folded_code_to_code = {d.code.lower(): d.code for d in departments}
    codes = rf"(?:{_words_pattern(folded_code_to_code)})"

    prefix_word = r"(?:departement|dept|dep|dpt|cd|cg)"
    cue_word = (
        r"(?:departements?|dept|dep|dpt|cd|cg|conseil[ \-]+departemental|conseil[ \-]+general"
        r"|ile)"
    )
    article = r"(?:de[ ]+la|de[ ]+l'?|du|des|de|d'|la|l')"

    scan = re.compile(
        rf"(?P<bracket>[(\[][ ]*(?P<bcode>{codes})[ ]*[)\]])"
        rf"|(?<!\w)(?P<cd>(?:cd|cg)[ _\-]*(?P<cdcode>{codes}))(?!\w)"
        rf"|(?<!\w)(?P<dep>(?:departement|dept|dep|dpt)\.?[ ]*(?:n[°o]\.?[ ]*)?"
        rf"(?P<depcode>{codes}))(?!\w)"
        rf"|(?<!\w)(?P<name>{names})(?!\w)"
    )

    edge = r"[^\w#%€$£/&+@°]"
    title_sep = r"[ \-–—:|,]"

    def title_code(group: str) -> str:
        return (
            rf"(?:[(\[][ ]*)?(?:{prefix_word}\.?[ _\-]*(?:n[°o]\.?[ ]*)?)?"
            rf"(?P<{group}>{codes})(?:[ ]*[)\]])?"
        )

    title = re.compile(
        rf"^{edge}*"
        rf"(?:{title_code('pre')}{title_sep}*)?"
        rf"(?:{cue_word}\.?[ ]*(?:{article}[ ]*)?)?"
        rf"(?:(?:le|la|les|l)[ ']+)?"
        rf"(?P<name>{names})?"
        rf"(?:{title_sep}*{title_code('post')})?"
        rf"{edge}*$"
    )
    return _Matcher(
        scan=scan,
        title=title,
        start_code=re.compile(rf"^[ ]*(?P<code>{codes})[ ]*[\-–—](?![ ]*\d)"),
        cue_before=re.compile(rf"(?<!\w){cue_word}\.?[ ]*(?:{article}[ ]*)?$"),
        code_before=re.compile(
            rf"(?:(?<![\w#./,:])(?:(?:cd|cg)[ _\-]*)?(?P<code>{codes})"
            rf"|[(\[][ ]*(?P<bcode>{codes})[ ]*[)\]])[ ]*(?:[\-–—:][ ]*)?$"
        ),
        code_after=re.compile(
            rf"[ ]*(?:[\-–—:,/][ ]*)?[(\[][ ]*(?P<bcode>{codes})[ ]*[)\]]"
            rf"|[ ]*[\-–—][ ]*(?P<code>{codes})(?!\w)"
        ),
        bracket_before=re.compile(r"[(\[][ ]*$"),
        bracket_after=re.compile(r"[ ]*[)\]]"),
        name_to_code=name_to_code,
        folded_code_to_code=folded_code_to_code,
    )


# --------------------------------------------------------------------------- matching


def match_title_exact(text: str) -> str | None:
    """The code when the whole ``text`` is one département's name and/or code, else ``None``.

    ``Somme``, ``La Réunion``, ``93 - Seine-Saint-Denis``, ``Corse-du-Sud (2A)``, ``CD77``,
    ``[Manche]``, ``Département du Nord`` all qualify; surrounding punctuation, brackets and
    emoji are ignored, but ``#77`` or ``26/11`` are not codes.
    """
    return _title_exact(text)


@lru_cache(maxsize=MEMO_SIZE)
def _title_exact(text: str) -> str | None:
    m = _matcher()
    folded, _ = _fold_with_map(text)
    hit = m.title.match(folded.strip())
    if hit is None:
        return None
    found: set[str | None] = set()
    if hit.group("name") is not None:
        found.add(m.name_to_code[_key(hit.group("name"))])
    for group in ("pre", "post"):
        if hit.group(group) is not None:
            found.add(m.folded_code_to_code[hit.group(group)])
    if len(found) != 1:
        return None
    return found.pop()


def _original(text: str, index: list[int] | None, start: int, end: int) -> str:
    if index is None:
        return text[start:end]
    return text[index[start] : index[end - 1] + 1]


def _cued(
    m: _Matcher,
    text: str,
    index: list[int] | None,
    folded: str,
    name: str,
    start: int,
    end: int,
    code: str,
) -> bool:
    """An ambiguous name in brackets, after ``département de``/``CD``…, or ``La Réunion``."""
    if m.bracket_before.search(folded, 0, start) and m.bracket_after.match(folded, end):
        return True
    if m.cue_before.search(folded, 0, start):
        return True
    return code == _REUNION and _capitalised_la_reunion(text, index, name, start)


def _code_beside(
    m: _Matcher, folded: str, start: int, end: int, code: str
) -> tuple[int, int] | None:
    """Span of this département's own code written right before or after its name."""
    before = m.code_before.search(folded, 0, start)
    if before is not None:
        group = "code" if before.group("code") is not None else "bcode"
        if m.folded_code_to_code[before.group(group)] == code:
            return before.span(group)
    after = m.code_after.match(folded, end)
    if after is not None:
        group = "code" if after.group("code") is not None else "bcode"
        if m.folded_code_to_code[after.group(group)] == code:
            return after.span(group)
    return None


def match_departments(text: str) -> list[DepartmentMatch]:
    """Every département ``text`` names, once each, in order of first mention.

    See the module docstring for what counts as naming a département.
    """
    return list(departments_named(text))


@lru_cache(maxsize=MEMO_SIZE)
def departments_named(text: str) -> tuple[DepartmentMatch, ...]:
    """`match_departments` as a tuple, remembered per text (`MEMO_SIZE`): the rules ask it of
    every card title at every evaluation, and a title is matched once per process."""
    m = _matcher()
    folded, index = _fold_with_map(text)
    hits: list[tuple[int, int, str, str]] = []  # (start, end, code, reason)

    start_hit = m.start_code.match(folded)
    if start_hit is not None:
        hits.append((*start_hit.span("code"), m.folded_code_to_code[start_hit["code"]], "code"))

    title_code: str | None = None
    title_checked = False
    for hit in m.scan.finditer(folded):
        kind = hit.lastgroup
        if kind == "name":
            code = m.name_to_code[_key(hit.group("name"))]
            if code is None:  # a region name that merely contains a département's name
                continue
            start, end = hit.span("name")
            if _in_town_name(folded, start, end):  # Nogent-sur-Marne is in 94, not the Marne
                continue
            beside = _code_beside(m, folded, start, end, code)
            if beside is not None:
                hits.append((*beside, code, "code"))
            if (
                code in AMBIGUOUS_CODES
                and beside is None
                and not _cued(m, text, index, folded, hit.group("name"), start, end, code)
            ):
                if not title_checked:
                    title_code, title_checked = _title_exact(text), True
                if title_code != code:  # prose: only a title that is the name alone counts
                    continue
            hits.append((start, end, code, "name"))
        else:
            group = {"bracket": "bcode", "cd": "cdcode", "dep": "depcode"}[kind or ""]
            start, end = hit.span(kind or "")
            hits.append((start, end, m.folded_code_to_code[hit.group(group)], "code"))

    if not hits:
        return ()
    hits.sort(key=lambda h: (h[0], h[1]))
    seen: set[str] = set()
    result: list[DepartmentMatch] = []
    for start, end, code, reason in hits:
        if code in seen:
            continue
        seen.add(code)
        result.append(DepartmentMatch(code, reason, _original(text, index, start, end)))
    return tuple(result)


_TOWN_BEFORE: Final = re.compile(r"\w(?:-(?:sur|sous)[ \-]|[ ](?:sur|sous)-)$")
_TOWN_AFTER: Final = re.compile(r"(?:-(?:sur|sous)[ \-]|[ ](?:sur|sous)-)\w")


def _in_town_name(folded: str, start: int, end: int) -> bool:
    """The name is the river of a hyphenated town name: ``Nogent-sur-Marne``,
    ``Cosne-Cours-sur-Loire``, ``Loire-sur-Rhône`` (a hyphen beside ``sur``/``sous``, as
    communes are written; ``Déploiement sur Loire-Atlantique`` is no town)."""
    return bool(
        _TOWN_BEFORE.search(folded, max(0, start - 8), start) or _TOWN_AFTER.match(folded, end)
    )


def _capitalised_la_reunion(text: str, index: list[int] | None, name: str, start: int) -> bool:
    """``La Réunion``: the article is present and ``Réunion`` starts with a capital letter."""
    offset = name.find("reunion")
    if offset < 2 or not name.startswith("la"):
        return False
    original = start + offset if index is None else index[start + offset]
    return text[original].isupper()
