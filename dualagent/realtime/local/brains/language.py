"""Small language tools for the scripted brains: hearing numbers, dates and names in ASR text,
and saying them in a form that speech recognition hears back reliably.

Recognised speech is lower case, unpunctuated and imperfect ("for" for "four", "won" for
"one"), so every parser here is forgiving and tested on such text.
"""

from __future__ import annotations

import functools
import re
from datetime import date

from dualagent.text import TEENS, TENS, UNITS, number_words

MONTHS = [
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
]  # fmt: skip
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_ORDINAL_WORDS = {v: k for k, v in ORDINALS.items()}

# Words a recogniser writes for digits when they are spoken one by one.
DIGIT_WORDS = {w: str(i) for i, w in enumerate(UNITS)} | {
    "oh": "0", "o": "0", "won": "1", "to": "2", "too": "2", "for": "4", "fore": "4",
    "ate": "8", "tree": "3", "free": "3", "sex": "6", "nein": "9",
}  # fmt: skip
_STRICT_DIGITS = set(UNITS) | {"oh"}


_NOT_A_WORD = re.compile(r"[^a-z0-9' ]+")


@functools.lru_cache(maxsize=4096)  # a brain checks the same utterance against many phrases
def normalize(text: str) -> str:
    """Lower case, letters/digits/apostrophes only, single spaces."""
    return " ".join(_NOT_A_WORD.sub(" ", text.lower()).split())


def has_any(text: str, phrases: list[str] | tuple[str, ...]) -> bool:
    """True when any phrase occurs in ``text`` on word boundaries (text is normalised)."""
    padded = f" {normalize(text)} "
    return any(f" {phrase} " in padded for phrase in phrases)


# ------------------------------------------------------------------------------ numbers


def say_digits(digits: str) -> str:
    """'4417' -> 'four four one seven' (spoken one by one, as people read card numbers)."""
    return " ".join(UNITS[int(d)] for d in digits if d.isdigit())


def say_money(amount: float) -> str:
    """342.99 -> 'three hundred forty two dollars and ninety nine cents'."""
    cents_total = round(abs(amount) * 100)
    dollars, cents = divmod(cents_total, 100)
    text = f"{number_words(dollars)} dollar{'s' if dollars != 1 else ''}"
    if cents:
        text += f" and {number_words(cents)} cent{'s' if cents != 1 else ''}"
    return text


def say_year(year: int) -> str:
    """1958 -> 'nineteen fifty eight'; 2005 -> 'two thousand five'."""
    if 2000 <= year < 2010:
        return number_words(year)
    high, low = divmod(year, 100)
    if low == 0:
        return f"{number_words(high)} hundred"
    return f"{number_words(high)} {'oh ' + UNITS[low] if low < 10 else number_words(low)}"


def ordinal_words(n: int) -> str:
    """14 -> 'fourteenth', 23 -> 'twenty third'."""
    if n in _ORDINAL_WORDS:
        return _ORDINAL_WORDS[n]
    tens, unit = divmod(n, 10)
    return f"{TENS[tens]} {_ORDINAL_WORDS[unit]}"


def say_date(iso: str) -> str:
    """'1958-03-14' -> 'March fourteenth nineteen fifty eight'."""
    day = date.fromisoformat(iso)
    return f"{MONTHS[day.month - 1].capitalize()} {ordinal_words(day.day)} {say_year(day.year)}"


def parse_digit_run(text: str, length: int = 4) -> str | None:
    """The last run of ``length`` spoken digits in ``text`` ('four for one seven' -> '4417').

    Homophones count only inside a run that has at least two unambiguous digit words, so
    "looking for two" does not become a number.
    """
    words = normalize(text).split()
    best: str | None = None
    run: list[str] = []
    strict = 0
    for word in [*words, "<end>"]:
        digit = DIGIT_WORDS.get(word) if not word.isdigit() else word
        if digit is not None:
            run.append(digit)
            strict += word in _STRICT_DIGITS or word.isdigit()
            continue
        joined = "".join(run)
        if len(joined) >= length and strict >= 2:
            best = joined[-length:]
        run, strict = [], 0
    return best


def _parse_small_number(words: list[str]) -> tuple[int | None, int]:
    """A number below 100 from the start of ``words``; returns (value, words used)."""
    if not words:
        return None, 0
    first = words[0]
    if first in TEENS:
        return 10 + TEENS.index(first), 1
    if first in TENS[2:]:
        value = 10 * TENS.index(first)
        if len(words) > 1 and words[1] in UNITS[1:]:
            return value + UNITS.index(words[1]), 2
        return value, 1
    if first in UNITS:
        return UNITS.index(first), 1
    if first.isdigit():
        return int(first), 1
    return None, 0


def parse_year(words: list[str]) -> int | None:
    """'nineteen fifty eight' -> 1958; 'two thousand five' -> 2005; '1958' -> 1958."""
    if words and words[0].isdigit() and len(words[0]) == 4:
        return int(words[0])
    if words[:2] == ["two", "thousand"]:
        rest, _ = _parse_small_number(words[2:] if words[2:3] != ["and"] else words[3:])
        return 2000 + (rest or 0)
    high, used = _parse_small_number(words)
    if high is None or not 10 <= high <= 20:
        return None
    rest = words[used:]
    if rest[:1] == ["hundred"]:
        return high * 100
    if rest[:1] in (["oh"], ["o"]):
        low, _ = _parse_small_number(rest[1:])
        return high * 100 + low if low is not None and low < 10 else None
    low, _ = _parse_small_number(rest)
    return high * 100 + low if low is not None else None


def parse_date(text: str) -> str | None:
    """A spoken date of birth ('march fourteenth nineteen fifty eight') as ISO, or None."""
    words = normalize(text).split()
    for i, word in enumerate(words):
        if word not in MONTHS:
            continue
        month = MONTHS.index(word) + 1
        rest = [w for w in words[i + 1 :] if w not in ("the", "of", "and")]
        day, used = _parse_day(rest)
        if day is None:
            continue
        year = parse_year(rest[used:])
        if year is None:
            continue
        try:
            return date(year, month, day).isoformat()
        except ValueError:
            continue
    return None


def _parse_day(words: list[str]) -> tuple[int | None, int]:
    if not words:
        return None, 0
    if words[0] in ORDINALS:
        return ORDINALS[words[0]], 1
    if words[0] in ("twenty", "thirty") and len(words) > 1 and words[1] in ORDINALS:
        return 10 * TENS.index(words[0]) + ORDINALS[words[1]], 2
    value, used = _parse_small_number(words)
    if value is not None and 1 <= value <= 31:
        return value, used
    return None, 0


NAME_CUES = ("my name is", "name is", "this is", "i am", "i'm", "it's", "its", "it is", "name's")
_NOT_NAMES = {
    "a", "an", "the", "calling", "here", "about", "my", "not", "just", "so", "um", "uh", "and",
    "yes", "yeah", "sure", "okay", "ok", "well", "oh", "that", "is", "really", "very", "afraid",
    "sorry", "looking", "trying", "fine", "good", "in", "on", "at", "for", "to", "of", "with",
    "your", "you", "me", "we", "it", "this", "what", "who", "how", "why", "there", "their",
    "going", "having", "being", "still", "also", "too", "again", "dear", "now", "please", "thank",
    "thanks", "hi", "hello", "no", "lost", "stolen", "card", "born", "date", "birth",
}  # fmt: skip


def parse_full_name(text: str) -> str | None:
    """'yes my name is sarah johnson' -> 'Sarah Johnson' (two words after a cue), or None."""
    words = normalize(text).split()
    for cue in NAME_CUES:
        cue_words = cue.split()
        for i in range(len(words) - len(cue_words) + 1):
            if words[i : i + len(cue_words)] != cue_words:
                continue
            candidate = [w for w in words[i + len(cue_words) : i + len(cue_words) + 2]]
            plausible = all(
                "'" not in w and not w.isdigit() and w not in _NOT_NAMES for w in candidate
            )
            if len(candidate) == 2 and plausible:
                return " ".join(w.capitalize() for w in candidate)
    return None


YES = ("yes", "yeah", "yep", "correct", "that's right", "that is right", "right", "sure",
       "please do", "go ahead", "sounds good", "that's correct", "perfect", "okay", "ok")  # fmt: skip
NO = ("no", "nope", "not right", "that's wrong", "incorrect", "not correct", "wrong")


def is_yes(text: str) -> bool:
    """An affirmative answer: starts with a yes-word, or says yes and not no."""
    words = normalize(text).split()
    if words and words[0] in ("yes", "yeah", "yep", "correct", "right", "sure"):
        return True
    return has_any(text, YES) and not is_no(text)


def is_no(text: str) -> bool:
    """A negative answer: starts with a no-word, or says the thing is wrong."""
    words = normalize(text).split()
    return bool(words) and (words[0] in ("no", "nope", "nah") or has_any(text, NO[2:]))
