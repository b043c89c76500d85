"""French by rules for the parallel synthetic corpus: numbers, dates, times, agreement, conjugation.

Everything returns lower-case French words joined by spaces (proper names and spelled letters keep
their case), without sentence punctuation. The rules are those of standard (pre-1990) spelling:

- numbers: hyphens between tens and units below 100, ``et`` joins a final one to 20-70
  (21 = vingt et un, 71 = soixante et onze, but 81 = quatre-vingt-un); ``quatre-vingts`` and
  ``cents`` take their plural ``s`` only at the end (200 = deux cents, 201 = deux cent un);
  ``mille`` never does; a number counting a feminine noun ends in ``une`` (21 heures -> vingt et une);
- dates: ``le`` + cardinal day (the 1st is ``le premier``) + month + year as a cardinal;
- noun phrases: determiners, adjectives (most after the noun, a few before it) and predicates
  agree in gender and number; le/la elide before a vowel (``l'arbre``), ma/sa become mon/son and
  ce becomes cet before one, and vieux/nouveau/beau become vieil/nouvel/bel before a masculine
  vowel-initial noun;
- verbs: present tense by person; ``ne ... pas`` for negation, where an indefinite article
  becomes ``de``; je/ne elide before a vowel (``j'ai``, ``n'aime``); à + le/les contract to au/aux.

Words starting with a mute ``h`` count as vowel-initial (``l'hôpital``).
"""

from __future__ import annotations

from dataclasses import dataclass

UNITS = ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
         "douze", "treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf"]
TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante", 6: "soixante"}
MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
          "octobre", "novembre", "décembre"]
VOWELS = "aeiouhàâäéèêëîïôöùûüœ"

# Subject pronouns by person: 0 je, 1 tu, 2 il/elle (3rd singular), 3 nous, 4 vous, 5 ils/elles.
VERBS = {
    "avoir": ("ai", "as", "a", "avons", "avez", "ont"),
    "être": ("suis", "es", "est", "sommes", "êtes", "sont"),
    "aller": ("vais", "vas", "va", "allons", "allez", "vont"),
    "voir": ("vois", "vois", "voit", "voyons", "voyez", "voient"),
    "vouloir": ("veux", "veux", "veut", "voulons", "voulez", "veulent"),
    "aimer": ("aime", "aimes", "aime", "aimons", "aimez", "aiment"),
    "acheter": ("achète", "achètes", "achète", "achetons", "achetez", "achètent"),
    "chercher": ("cherche", "cherches", "cherche", "cherchons", "cherchez", "cherchent"),
    "ouvrir": ("ouvre", "ouvres", "ouvre", "ouvrons", "ouvrez", "ouvrent"),
    "fermer": ("ferme", "fermes", "ferme", "fermons", "fermez", "ferment"),
}


def _below_100(n: int, feminine: bool) -> str:
    one = "une" if feminine else "un"
    if n < 20:
        return one if n == 1 else UNITS[n]
    tens, unit = divmod(n, 10)
    if tens in (7, 9):  # soixante-dix..., quatre-vingt-dix...: the tens word plus 10-19
        head = "soixante" if tens == 7 else "quatre-vingt"
        link = " et " if n == 71 else "-"
        return head + link + UNITS[10 + unit]
    if tens == 8:
        return "quatre-vingts" if unit == 0 else "quatre-vingt-" + (one if unit == 1 else UNITS[unit])
    if unit == 0:
        return TENS[tens]
    if unit == 1:
        return f"{TENS[tens]} et {one}"
    return f"{TENS[tens]}-{UNITS[unit]}"


def cardinal(n: int, feminine: bool = False) -> str:
    """French cardinal of ``n`` (0 to 9999); ``feminine``: the form that counts a feminine noun."""
    if not 0 <= n <= 9999:
        raise ValueError(f"cardinal covers 0..9999, got {n}")
    if n == 0:
        return UNITS[0]
    words: list[str] = []
    thousands, rest = divmod(n, 1000)
    if thousands:
        words += ["mille"] if thousands == 1 else [UNITS[thousands], "mille"]
    hundreds, rest = divmod(rest, 100)
    if hundreds:
        if hundreds > 1:
            words.append(UNITS[hundreds])
        words.append("cents" if hundreds > 1 and rest == 0 else "cent")
    if rest:
        words.append(_below_100(rest, feminine))
    return " ".join(words)


def digits(ds: list[int]) -> str:
    """A digit string read digit by digit: [5, 0, 2] -> cinq zéro deux."""
    return " ".join(UNITS[d] for d in ds)


def date(month: int, day: int, year: int | None = None) -> str:
    """``le <day> <month> [<year>]``; ``month`` 1-12, the 1st is ``premier``: le premier mai 1984."""
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        raise ValueError(f"no such date: month {month}, day {day}")
    words = ["le", "premier" if day == 1 else cardinal(day), MONTHS[month - 1]]
    if year is not None:
        words.append(cardinal(year))
    return " ".join(words)


def clock(h: int, minute: int = 0, period: str | None = None) -> str:
    """A time of day, ``h`` 1-12: (2, 21, "pm") -> deux heures vingt et une de l'après-midi.

    ``period`` is None, ``"am"`` (du matin) or ``"pm"`` (de l'après-midi up to 5, du soir from 6);
    12 am is minuit and 12 pm midi. Hours and minutes are feminine: une heure, vingt et une.
    """
    if not 1 <= h <= 12 or not 0 <= minute <= 59 or period not in (None, "am", "pm"):
        raise ValueError(f"no such time: {h}:{minute:02d} {period}")
    if h == 12 and period is not None:
        words, tail = ["midi" if period == "pm" else "minuit"], ""
    else:
        words = [cardinal(h, feminine=True), "heure" if h == 1 else "heures"]
        tail = {None: "", "am": "du matin", "pm": "de l'après-midi" if h < 6 else "du soir"}[period]
    if minute:
        words.append(cardinal(minute, feminine=True))
    return " ".join(words + ([tail] if tail else []))


def relative_time(h: int, fraction: str, past: bool) -> str:
    """Half/quarter past/to ``h`` (1-12): quarter to 3 -> trois heures moins le quart.

    French says a half hour only after the hour, so half to 3 is deux heures et demie.
    """
    if fraction not in ("half", "quarter"):
        raise ValueError(f"fraction is half or quarter, got {fraction!r}")
    if fraction == "half":
        return clock(h if past else (h - 2) % 12 + 1) + " et demie"
    return clock(h) + (" et quart" if past else " moins le quart")


def elide(words: list[str]) -> str:
    """Join words, eliding le/la/je/ne/de before a vowel and contracting à le/à les to au/aux."""
    words = list(words)
    out: list[str] = []
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in ("le", "la", "je", "ne", "de") and nxt and nxt[0].lower() in VOWELS:
            out.append(w[0] + "'" + nxt)
            words[i + 1] = ""
            continue
        if not w:
            continue
        if out and out[-1] == "à" and w in ("le", "les"):
            out[-1] = "au" if w == "le" else "aux"
            continue
        out.append(w)
    return " ".join(out)


@dataclass(frozen=True)
class Noun:
    """A French noun: singular, plural, gender (``m``/``f``)."""

    sg: str
    pl: str
    gender: str

    def form(self, plural: bool) -> str:
        return self.pl if plural else self.sg


@dataclass(frozen=True)
class Adjective:
    """A French adjective's four forms (m sg, f sg, m pl, f pl), its place and its pre-vowel form."""

    m: str
    f: str
    mp: str
    fp: str
    before: bool = False  # petit, grand, vieux...: before the noun
    m_vowel: str = ""     # vieil, nouvel, bel: masculine singular before a vowel

    def agree(self, gender: str, plural: bool, next_word: str = "") -> str:
        """The form agreeing with ``gender``/``plural``, given the word that follows it."""
        if plural:
            return self.fp if gender == "f" else self.mp
        if gender == "f":
            return self.f
        if self.m_vowel and next_word and next_word[0] in VOWELS:
            return self.m_vowel
        return self.m


POSSESSIVES = {  # owner -> (m sg, f sg, plural); f sg before a vowel takes the m sg form
    "my": ("mon", "ma", "mes"), "your": ("votre", "votre", "vos"), "his": ("son", "sa", "ses"),
    "her": ("son", "sa", "ses"), "our": ("notre", "notre", "nos"), "their": ("leur", "leur", "leurs"),
}


def determiner(kind: str, noun: Noun, plural: bool, first: str, count: int = 0) -> str:
    """The determiner of ``noun``: kind is the/a/this/count or a possessive owner (my, your, ...).

    ``first`` is the word right after the determiner (an adjective or the noun), which decides
    mon/ma and ce/cet; le/la elide later, in :func:`elide`.
    """
    fem = noun.gender == "f"
    vowel = bool(first) and first[0] in VOWELS
    if kind == "the":
        return "les" if plural else ("la" if fem else "le")
    if kind == "a":
        return "des" if plural else ("une" if fem else "un")
    if kind == "this":
        return "ces" if plural else ("cette" if fem else ("cet" if vowel else "ce"))
    if kind == "count":
        return cardinal(count, feminine=fem)
    m_sg, f_sg, pl = POSSESSIVES[kind]
    return pl if plural else (m_sg if not fem or vowel else f_sg)


def noun_phrase(kind: str, noun: Noun, plural: bool, adjective: Adjective | None = None,
                count: int = 0, negated: bool = False) -> list[str]:
    """Determiner + noun + adjective in French order and agreement: [la, petite, maison], [le, chat, noir].

    ``negated``: the object of a negated verb, where un/une/des become ``de``.
    """
    n = noun.form(plural)
    if adjective is None:
        body = [n]
    elif adjective.before:
        body = [adjective.agree(noun.gender, plural, n), n]
    else:
        body = [n, adjective.agree(noun.gender, plural)]
    if negated and kind == "a":
        return ["de"] + body
    return [determiner(kind, noun, plural, body[0], count)] + body


def conjugate(verb: str, person: int) -> str:
    """Present tense of ``verb`` (a key of :data:`VERBS`) for person 0-5."""
    return VERBS[verb][person]


def clause(subject: list[str], person: int, verb: str, rest: list[str], negated: bool = False) -> str:
    """Subject + conjugated verb (+ ne ... pas) + the rest, elided: je n'ai pas de livre."""
    v = conjugate(verb, person)
    return elide(subject + (["ne", v, "pas"] if negated else [v]) + rest)
