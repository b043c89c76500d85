"""Seeded generator of short AN4-like prompts: digit strings, numbers, dates, times, commands, spelling.

A sentence is a list of upper-case words, exactly what goes into a Kaldi ``text`` file. Single
letters (``J O H N``, ``P M``) are spelled letters; :func:`speech_markup` turns a sentence into the
SSML that makes espeak say them as letter names rather than, for ``A``, the article.
"""

from __future__ import annotations

import random

DIGITS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
TEENS = ["TEN", "ELEVEN", "TWELVE", "THIRTEEN", "FOURTEEN", "FIFTEEN", "SIXTEEN", "SEVENTEEN",
         "EIGHTEEN", "NINETEEN"]
TENS = ["", "", "TWENTY", "THIRTY", "FORTY", "FIFTY", "SIXTY", "SEVENTY", "EIGHTY", "NINETY"]
ORDINALS = ["", "FIRST", "SECOND", "THIRD", "FOURTH", "FIFTH", "SIXTH", "SEVENTH", "EIGHTH", "NINTH",
            "TENTH", "ELEVENTH", "TWELFTH", "THIRTEENTH", "FOURTEENTH", "FIFTEENTH", "SIXTEENTH",
            "SEVENTEENTH", "EIGHTEENTH", "NINETEENTH", "TWENTIETH"]
MONTHS = ["JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER",
          "OCTOBER", "NOVEMBER", "DECEMBER"]
NAMES = ["JOHN", "MARY", "DAVID", "SUSAN", "PETER", "LINDA", "MIKE", "ANNA", "PAUL", "KATE", "ROBERT",
         "LISA", "JAMES", "EMMA", "TOM", "SARAH", "BOB", "NANCY", "STEVE", "HELEN"]
STREETS = ["MAIN", "OAK", "PINE", "MAPLE", "FORBES", "WALNUT", "CEDAR", "ELM", "HILL", "LAKE"]
COMMANDS = [["STOP"], ["GO"], ["START"], ["ENTER"], ["RUBOUT"], ["ERASE"], ["REPEAT"], ["HELP"],
            ["YES"], ["NO"], ["CANCEL"], ["TURN", "LEFT"], ["TURN", "RIGHT"], ["GO", "FORWARD"],
            ["GO", "BACK"], ["TURN", "AROUND"], ["SLOW", "DOWN"], ["SPEED", "UP"], ["OPEN", "THE", "DOOR"],
            ["CLOSE", "THE", "DOOR"], ["NEXT", "PAGE"], ["PREVIOUS", "PAGE"]]
LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]


def number_words(n: int) -> list[str]:
    """Cardinal ``n`` (0 to 9999) as words: 1984 -> ONE THOUSAND NINE HUNDRED EIGHTY FOUR."""
    if not 0 <= n <= 9999:
        raise ValueError(f"number_words covers 0..9999, got {n}")
    if n < 10:
        return [DIGITS[n]]
    words: list[str] = []
    if n >= 1000:
        words += [DIGITS[n // 1000], "THOUSAND"]
        n %= 1000
    if n >= 100:
        words += [DIGITS[n // 100], "HUNDRED"]
        n %= 100
    if 10 <= n < 20:
        words.append(TEENS[n - 10])
    elif n >= 20:
        words.append(TENS[n // 10])
        if n % 10:
            words.append(DIGITS[n % 10])
    elif n > 0:
        words.append(DIGITS[n])
    return words


def ordinal_words(n: int) -> list[str]:
    """Ordinal day of month (1 to 31) as words: 23 -> TWENTY THIRD."""
    if not 1 <= n <= 31:
        raise ValueError(f"ordinal_words covers 1..31, got {n}")
    if n <= 20:
        return [ORDINALS[n]]
    if n % 10 == 0:
        return ["THIRTIETH"]
    return [TENS[n // 10], ORDINALS[n % 10]]


def year_words(year: int) -> list[str]:
    """A year the way it is said: 1984 -> NINETEEN EIGHTY FOUR, 2005 -> TWO THOUSAND FIVE."""
    if 2000 <= year <= 2009:
        return number_words(year)
    hi, lo = divmod(year, 100)
    tail = ["HUNDRED"] if lo == 0 else (["OH", DIGITS[lo]] if lo < 10 else number_words(lo))
    return number_words(hi) + tail


def _digit_string(rng: random.Random, lo: int, hi: int) -> list[str]:
    zero = rng.choice(["ZERO", "OH"])
    return [zero if d == 0 else DIGITS[d] for d in (rng.randrange(10) for _ in range(rng.randint(lo, hi)))]


def _time(rng: random.Random) -> list[str]:
    hour = number_words(rng.randint(1, 12))
    style = rng.randrange(4)
    if style == 0:
        minute = rng.randint(1, 59)
        mins = ["OH", DIGITS[minute]] if minute < 10 else number_words(minute)
        return hour + mins + rng.choice([[], ["A", "M"], ["P", "M"]])
    if style == 1:
        return hour + rng.choice([["A", "M"], ["P", "M"]])
    if style == 2:
        return [rng.choice(["HALF", "QUARTER"]), rng.choice(["PAST", "TO"])] + hour
    return [rng.choice(["NOON", "MIDNIGHT"])]


def _date(rng: random.Random) -> list[str]:
    words = [rng.choice(MONTHS)] + ordinal_words(rng.randint(1, 28))
    if rng.random() < 0.5:
        words += year_words(rng.randint(1950, 2009))
    return words


def _spelled(rng: random.Random) -> list[str]:
    if rng.random() < 0.5:
        name = rng.choice(NAMES)
        return [name] + list(name) if rng.random() < 0.5 else list(name)
    return [rng.choice(LETTERS) for _ in range(rng.randint(2, 6))]


def _command(rng: random.Random) -> list[str]:
    style = rng.randrange(5)
    if style == 0:
        return ["CALL", rng.choice(NAMES), "AT"] + _time(rng)
    if style == 1:
        return ["CALL", rng.choice(NAMES)] + _digit_string(rng, 3, 7)
    if style == 2:
        return list(rng.choice(COMMANDS)) + number_words(rng.randint(1, 99)) + ["TIMES"]
    return list(rng.choice(COMMANDS))


def _address(rng: random.Random) -> list[str]:
    return number_words(rng.randint(1, 9999)) + [rng.choice(STREETS), rng.choice(["STREET", "AVENUE", "ROAD"])]


_KINDS = ((_digit_string, 3), (_command, 4), (_date, 2), (_time, 2), (_spelled, 2), (_address, 1))


def generate_sentence(rng: random.Random) -> list[str]:
    """One prompt drawn from ``rng``: a list of upper-case words."""
    makers, weights = zip(*_KINDS)
    maker = rng.choices(makers, weights=weights)[0]
    return maker(rng, 2, 10) if maker is _digit_string else maker(rng)


def generate_sentences(num: int, seed: int) -> list[list[str]]:
    """``num`` prompts; the same seed gives the same list."""
    rng = random.Random(seed)
    return [generate_sentence(rng) for _ in range(num)]


def speech_markup(words: list[str]) -> str:
    """SSML for espeak: runs of single letters are spelled (say-as characters), the rest read as words."""
    parts: list[str] = []
    run: list[str] = []
    for word in words + [""]:
        if len(word) == 1:
            run.append(word.lower())
            continue
        if run:
            parts.append(f'<say-as interpret-as="characters">{"".join(run)}</say-as>')
            run = []
        if word:
            parts.append(word.lower())
    return "<speak>" + " ".join(parts) + "</speak>"
