"""Seeded English -> French prompt pairs: the synthetic-corpus grammar plus short sentences.

Each maker draws what a prompt means (a date, a time, a count of chairs in a school...) and says
it twice: in English as upper-case words (:mod:`chunkssl.synth.sentences` number, ordinal and
year words, its names, streets, months, commands and letters; what espeak reads and the ASR
transcribes) and in French by the rules of :mod:`chunkssl.synth.french`. The kinds:

- the AN4-like grammar of :mod:`chunkssl.synth.sentences`: digit strings, commands (with counts,
  calls to a name at a time or number), dates, times, spelled words, street addresses;
- short sentences: descriptions (THE OLD TREES ARE GREEN), actions by a pronoun with an object,
  optionally negated (SHE DOES NOT LIKE HER NEW CHAIR), going somewhere on a day or at a time
  (WE GO TO THE HOSPITAL ON MONDAY) and counts (THERE ARE TWENTY ONE SMALL CHAIRS IN THE SCHOOL).

The article A is never used: as a single letter, :func:`~chunkssl.synth.sentences.speech_markup`
would spell it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chunkssl.synth import french as fr
from chunkssl.synth.french import Adjective, Noun
from chunkssl.synth.sentences import (COMMANDS, DIGITS, LETTERS, MONTHS, NAMES, STREETS, number_words,
                                      ordinal_words, year_words)


@dataclass(frozen=True)
class Pair:
    """One prompt: English words (upper case, for espeak and the transcript), its French, its kind."""

    en: tuple[str, ...]
    fr: str
    kind: str


# English singular, English plural, French noun
THINGS = [("BOOK", "BOOKS", Noun("livre", "livres", "m")), ("CAR", "CARS", Noun("voiture", "voitures", "f")),
          ("HOUSE", "HOUSES", Noun("maison", "maisons", "f")), ("DOG", "DOGS", Noun("chien", "chiens", "m")),
          ("CAT", "CATS", Noun("chat", "chats", "m")), ("TABLE", "TABLES", Noun("table", "tables", "f")),
          ("CHAIR", "CHAIRS", Noun("chaise", "chaises", "f")), ("KEY", "KEYS", Noun("clé", "clés", "f")),
          ("TREE", "TREES", Noun("arbre", "arbres", "m")), ("BIRD", "BIRDS", Noun("oiseau", "oiseaux", "m")),
          ("HAT", "HATS", Noun("chapeau", "chapeaux", "m")), ("HORSE", "HORSES", Noun("cheval", "chevaux", "m")),
          ("APPLE", "APPLES", Noun("pomme", "pommes", "f")), ("BOTTLE", "BOTTLES", Noun("bouteille", "bouteilles", "f"))]
PEOPLE = [("BROTHER", "BROTHERS", Noun("frère", "frères", "m")), ("SISTER", "SISTERS", Noun("sœur", "sœurs", "f")),
          ("MOTHER", "MOTHERS", Noun("mère", "mères", "f")), ("FATHER", "FATHERS", Noun("père", "pères", "m")),
          ("FRIEND", "FRIENDS", Noun("ami", "amis", "m"))]
PLACES = [("STATION", Noun("gare", "gares", "f")), ("PARK", Noun("parc", "parcs", "m")),
          ("SCHOOL", Noun("école", "écoles", "f")), ("MARKET", Noun("marché", "marchés", "m")),
          ("HOSPITAL", Noun("hôpital", "hôpitaux", "m")), ("OFFICE", Noun("bureau", "bureaux", "m")),
          ("BEACH", Noun("plage", "plages", "f"))]
COLOURS = [("RED", Adjective("rouge", "rouge", "rouges", "rouges")),
           ("GREEN", Adjective("vert", "verte", "verts", "vertes")),
           ("BLUE", Adjective("bleu", "bleue", "bleus", "bleues")),
           ("BLACK", Adjective("noir", "noire", "noirs", "noires")),
           ("WHITE", Adjective("blanc", "blanche", "blancs", "blanches"))]
SIZES = [("BIG", Adjective("grand", "grande", "grands", "grandes", before=True)),
         ("SMALL", Adjective("petit", "petite", "petits", "petites", before=True)),
         ("OLD", Adjective("vieux", "vieille", "vieux", "vieilles", before=True, m_vowel="vieil")),
         ("NEW", Adjective("nouveau", "nouvelle", "nouveaux", "nouvelles", before=True, m_vowel="nouvel")),
         ("BEAUTIFUL", Adjective("beau", "belle", "beaux", "belles", before=True, m_vowel="bel"))]
MOODS = [("HAPPY", Adjective("heureux", "heureuse", "heureux", "heureuses")),
         ("TIRED", Adjective("fatigué", "fatiguée", "fatigués", "fatiguées")),
         ("TALL", Adjective("grand", "grande", "grands", "grandes"))]
# English pronoun, French pronoun, person (0 je ... 5 ils)
PRONOUNS = [("I", "je", 0), ("YOU", "vous", 4), ("HE", "il", 2), ("SHE", "elle", 2), ("WE", "nous", 3),
            ("THEY", "ils", 5)]
# English base form, English third person singular, French verb
VERBS = [(("HAVE",), ("HAS",), "avoir"), (("SEE",), ("SEES",), "voir"), (("WANT",), ("WANTS",), "vouloir"),
         (("LIKE",), ("LIKES",), "aimer"), (("BUY",), ("BUYS",), "acheter"), (("OPEN",), ("OPENS",), "ouvrir"),
         (("CLOSE",), ("CLOSES",), "fermer"), (("LOOK", "FOR"), ("LOOKS", "FOR"), "chercher")]
OWNERS = ["MY", "YOUR", "HIS", "HER", "OUR", "THEIR"]
DAYS = [("MONDAY", "lundi"), ("TUESDAY", "mardi"), ("WEDNESDAY", "mercredi"), ("THURSDAY", "jeudi"),
        ("FRIDAY", "vendredi"), ("SATURDAY", "samedi"), ("SUNDAY", "dimanche")]
STREET_TYPES = {"STREET": "rue", "AVENUE": "avenue", "ROAD": "route"}
COMMANDS_FR = {"STOP": "arrêtez", "GO": "allez-y", "START": "commencez", "ENTER": "entrez", "RUBOUT": "effacez",
               "ERASE": "effacez", "REPEAT": "répétez", "HELP": "à l'aide", "YES": "oui", "NO": "non",
               "CANCEL": "annulez", "TURN LEFT": "tournez à gauche", "TURN RIGHT": "tournez à droite",
               "GO FORWARD": "avancez", "GO BACK": "reculez", "TURN AROUND": "faites demi-tour",
               "SLOW DOWN": "ralentissez", "SPEED UP": "accélérez", "OPEN THE DOOR": "ouvrez la porte",
               "CLOSE THE DOOR": "fermez la porte", "NEXT PAGE": "page suivante",
               "PREVIOUS PAGE": "page précédente"}


def _name(word: str) -> str:
    return word.capitalize()


def _digits(rng: random.Random, lo: int, hi: int) -> tuple[list[str], str]:
    ds = [rng.randrange(10) for _ in range(rng.randint(lo, hi))]
    zero = rng.choice(["ZERO", "OH"])
    return [zero if d == 0 else DIGITS[d] for d in ds], fr.digits(ds)


def _time(rng: random.Random) -> tuple[list[str], str]:
    h = rng.randint(1, 12)
    style = rng.randrange(4)
    if style == 0:
        minute = rng.randint(1, 59)
        period = rng.choice([None, "am", "pm"])
        mins = ["OH", DIGITS[minute]] if minute < 10 else number_words(minute)
        ampm = {None: [], "am": ["A", "M"], "pm": ["P", "M"]}[period]
        return number_words(h) + mins + ampm, fr.clock(h, minute, period)
    if style == 1:
        period = rng.choice(["am", "pm"])
        return number_words(h) + ([period[0].upper(), "M"]), fr.clock(h, 0, period)
    if style == 2:
        fraction, past = rng.choice(["half", "quarter"]), rng.random() < 0.5
        return [fraction.upper(), "PAST" if past else "TO"] + number_words(h), fr.relative_time(h, fraction, past)
    noon = rng.random() < 0.5
    return ["NOON" if noon else "MIDNIGHT"], "midi" if noon else "minuit"


def _date(rng: random.Random) -> tuple[list[str], str]:
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    year = rng.randint(1950, 2009) if rng.random() < 0.5 else None
    en = [MONTHS[month - 1]] + ordinal_words(day) + (year_words(year) if year else [])
    return en, fr.date(month, day, year)


def _spelled(rng: random.Random) -> tuple[list[str], str]:
    if rng.random() < 0.5:
        name = rng.choice(NAMES)
        en = [name] + list(name) if rng.random() < 0.5 else list(name)
    else:
        en = [rng.choice(LETTERS) for _ in range(rng.randint(2, 6))]
    return en, " ".join(_name(w) if len(w) > 1 else w for w in en)


def _command(rng: random.Random) -> tuple[list[str], str]:
    style = rng.randrange(5)
    if style == 0:
        name = rng.choice(NAMES)
        en, when = _time(rng)
        return ["CALL", name, "AT"] + en, f"appelez {_name(name)} à {when}"
    if style == 1:
        name = rng.choice(NAMES)
        en, number = _digits(rng, 3, 7)
        return ["CALL", name] + en, f"appelez {_name(name)} au {number}"
    cmd = list(rng.choice(COMMANDS))
    if style == 2:
        n = rng.randint(1, 99)
        return cmd + number_words(n) + ["TIMES"], f"{COMMANDS_FR[' '.join(cmd)]} {fr.cardinal(n, True)} fois"
    return cmd, COMMANDS_FR[" ".join(cmd)]


def _address(rng: random.Random) -> tuple[list[str], str]:
    n, street, kind = rng.randint(1, 9999), rng.choice(STREETS), rng.choice(sorted(STREET_TYPES))
    return number_words(n) + [street, kind], f"{fr.cardinal(n)} {STREET_TYPES[kind]} {_name(street)}"


def _noun_phrase(rng: random.Random, nouns: list, owners: list[str], adjectives: list,
                 plural: bool) -> tuple[list[str], list[str], Noun]:
    """English and French of ``<owner|THE|THIS> [adjective] noun``, and the French noun."""
    en_sg, en_pl, noun = rng.choice(nouns)
    owner = rng.choice(owners)
    kind = owner.lower() if owner in OWNERS else {"THE": "the", "THIS": "this"}[owner]
    en_det = ("THESE" if plural else "THIS") if owner == "THIS" else owner
    adj_en, adj = rng.choice(adjectives) if adjectives and rng.random() < 0.6 else ("", None)
    en = [en_det] + ([adj_en] if adj_en else []) + [en_pl if plural else en_sg]
    return en, fr.noun_phrase(kind, noun, plural, adj), noun


def _describe(rng: random.Random) -> tuple[list[str], str]:
    plural = rng.random() < 0.4
    if rng.random() < 0.5:
        en, np_fr, noun = _noun_phrase(rng, THINGS, ["THE", "THIS"] + OWNERS, COLOURS + SIZES, plural)
        pred_en, pred = rng.choice(COLOURS + SIZES)
    else:
        en, np_fr, noun = _noun_phrase(rng, PEOPLE, OWNERS, [], plural)
        pred_en, pred = rng.choice(MOODS)
    return en + ["ARE" if plural else "IS", pred_en], \
        fr.clause(np_fr, 5 if plural else 2, "être", [pred.agree(noun.gender, plural)])


def _verb_phrase(pron_en: str, base: tuple[str, ...], third: tuple[str, ...], negated: bool) -> list[str]:
    """English verb with do-support: LIKES, DOES NOT LIKE, DO NOT LIKE."""
    singular3 = pron_en in ("HE", "SHE")
    if negated:
        return ["DOES" if singular3 else "DO", "NOT"] + list(base)
    return list(third if singular3 else base)


def _action(rng: random.Random) -> tuple[list[str], str]:
    pron_en, pron_fr, person = rng.choice(PRONOUNS)
    base, third, verb = rng.choice(VERBS)
    negated = rng.random() < 0.3
    en_sg, en_pl, noun = rng.choice(THINGS)
    style = rng.randrange(3)
    adj_en, adj = rng.choice(COLOURS + SIZES) if rng.random() < 0.5 else ("", None)
    if style == 0 and negated:  # no ... any: French un/une/des become de
        obj_en, obj_fr = ["ANY"] + ([adj_en] if adj_en else []) + [en_pl], \
            fr.noun_phrase("a", noun, True, adj, negated=True)
    elif style == 0:
        n = rng.randint(1, 99)
        obj_en = number_words(n) + ([adj_en] if adj_en else []) + [en_sg if n == 1 else en_pl]
        obj_fr = fr.noun_phrase("count", noun, n > 1, adj, count=n)
    else:
        obj_en, obj_fr, _ = _noun_phrase(rng, [(en_sg, en_pl, noun)], ["THE", "THIS"] + OWNERS,
                                         COLOURS + SIZES, rng.random() < 0.4)
    en = [pron_en] + _verb_phrase(pron_en, base, third, negated) + obj_en
    return en, fr.clause([pron_fr], person, verb, obj_fr, negated)


def _go(rng: random.Random) -> tuple[list[str], str]:
    pron_en, pron_fr, person = rng.choice(PRONOUNS)
    place_en, place = rng.choice(PLACES)
    negated = rng.random() < 0.2
    en = [pron_en] + _verb_phrase(pron_en, ("GO",), ("GOES",), negated) + ["TO", "THE", place_en]
    rest = ["à"] + fr.noun_phrase("the", place, False)
    when = rng.randrange(3)
    if when == 1:
        day_en, day_fr = rng.choice(DAYS)
        en, rest = en + ["ON", day_en], rest + [day_fr]
    elif when == 2:
        t_en, t_fr = _time(rng)
        en, rest = en + ["AT"] + t_en, rest + ["à", t_fr]
    return en, fr.clause([pron_fr], person, "aller", rest, negated)


def _count(rng: random.Random) -> tuple[list[str], str]:
    en_sg, en_pl, noun = rng.choice(THINGS)
    place_en, place = rng.choice(PLACES)
    n = rng.randint(1, 99)
    adj_en, adj = rng.choice(COLOURS + SIZES) if rng.random() < 0.5 else ("", None)
    en = ["THERE", "IS" if n == 1 else "ARE"] + number_words(n) + ([adj_en] if adj_en else []) \
        + [en_sg if n == 1 else en_pl, "IN", "THE", place_en]
    return en, fr.elide(["il", "y", "a"] + fr.noun_phrase("count", noun, n > 1, adj, count=n)
                        + ["dans"] + fr.noun_phrase("the", place, False))


MAKERS = {"digits": (lambda rng: _digits(rng, 2, 8), 2), "command": (_command, 3), "date": (_date, 2),
          "time": (_time, 2), "spelled": (_spelled, 1), "address": (_address, 1), "describe": (_describe, 3),
          "action": (_action, 4), "go": (_go, 2), "count": (_count, 2)}


def generate_pair(rng: random.Random) -> Pair:
    """One English/French prompt pair drawn from ``rng``."""
    kinds = sorted(MAKERS)
    kind = rng.choices(kinds, weights=[MAKERS[k][1] for k in kinds])[0]
    en, french = MAKERS[kind][0](rng)
    return Pair(tuple(en), french, kind)


def generate_pairs(num: int, seed: int) -> list[Pair]:
    """``num`` pairs; the same seed gives the same list."""
    rng = random.Random(seed)
    return [generate_pair(rng) for _ in range(num)]
