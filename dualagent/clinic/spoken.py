"""Values as a caller says them, read forgivingly: days, times, dates of birth and names.

A clinic's tools are called by language models and by scripted agents that fill arguments from
recognised speech ("tuesday please", "two p m", "may fourteenth nineteen eighty"), so each
reader accepts the written form and the common spoken ones, and answers None when the text
holds no such value (the tool then refuses with a sentence saying what it needs).
"""

from __future__ import annotations

import re
from datetime import date

from dualagent.text import NUMBER_VALUES, words

__all__ = [
    "DAYS",
    "mentions_name",
    "name_key",
    "parse_date",
    "parse_day",
    "parse_time",
]

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_WORDS = {d.lower(): d for d in DAYS} | {
    "mon": "Monday", "tue": "Tuesday", "tues": "Tuesday", "wed": "Wednesday",
    "thu": "Thursday", "thur": "Thursday", "thurs": "Thursday", "fri": "Friday",
    "sat": "Saturday", "sun": "Sunday",
}  # fmt: skip
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*$")
_CLOCK = re.compile(r"\b(\d{1,2})[:.](\d{2})\b")
_TITLES = {"dr": "doctor", "doc": "doctor"}


def parse_day(text: str) -> str | None:
    """The weekday named in ``text`` ('tuesday please', 'Tue') as 'Tuesday'."""
    for token in words(text).split():
        if token in _DAY_WORDS:
            return _DAY_WORDS[token]
    return None


def parse_time(text: str) -> str | None:
    """A time of day as 'HH:MM': '14:00', '2 pm', 'two p m', 'ten thirty', 'noon'.

    A bare hour is read as clinic hours: 7 to 11 in the morning, 12 to 6 in the afternoon.
    """
    clock = _CLOCK.search(text)
    tokens = words(text.replace("a.m.", " am ").replace("p.m.", " pm ")).split()
    joined = f" {' '.join(tokens)} "
    afternoon = any(f" {m} " in joined for m in ("pm", "p m", "afternoon", "evening"))
    morning = any(f" {m} " in joined for m in ("am", "a m", "morning"))
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2))
    else:
        found = _spoken_time(tokens)
        if found is None:
            if "noon" in tokens or "midday" in tokens:
                return "12:00"
            return None
        hour, minute = found
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    if hour <= 12 and (afternoon or (not morning and 1 <= hour <= 6)) and hour != 12:
        hour += 12
    if morning and hour == 12:
        hour = 0
    return f"{hour:02d}:{minute:02d}"


def _spoken_time(tokens: list[str]) -> tuple[int, int] | None:
    """(hour, minute) from '10', '10 30', 'ten', 'ten thirty', 'two fifteen', 'nine oh five'."""
    for i, token in enumerate(tokens):
        hour = int(token) if token.isdigit() and len(token) <= 2 else NUMBER_VALUES.get(token)
        if hour is None or not 1 <= hour <= 12:
            continue
        rest = tokens[i + 1 : i + 3]
        minute = 0
        if rest[:1] == ["oh"] and len(rest) > 1 and NUMBER_VALUES.get(rest[1], 10) < 10:
            minute = NUMBER_VALUES[rest[1]]
        elif rest and rest[0].isdigit() and len(rest[0]) == 2:
            minute = int(rest[0])
        elif rest and rest[0] in NUMBER_VALUES and NUMBER_VALUES[rest[0]] >= 10:
            minute = NUMBER_VALUES[rest[0]]
            if minute >= 20 and len(rest) > 1 and NUMBER_VALUES.get(rest[1], 10) < 10:
                minute += NUMBER_VALUES[rest[1]]
        return hour, minute
    return None


def parse_date(text: str) -> str | None:
    """A full date as 'YYYY-MM-DD': '1980-05-14', 'May 14 1980', '14th of May, 1980',
    'may fourteenth nineteen eighty'; None without a valid day, month and year."""
    iso = _ISO_DATE.match(text)
    if iso:
        return _valid(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    tokens = [t for t in words(text).split() if t not in ("the", "of", "on", "and", "born")]
    month_at = next((i for i, t in enumerate(tokens) if _month(t)), None)
    if month_at is None:
        return None
    month = _month(tokens[month_at])
    before, after = tokens[:month_at], tokens[month_at + 1 :]
    # 'May fourteenth 1980' (the day after the month), else '14th of May 1980' (before it).
    day, used = _day_number(after)
    if day is not None:
        year = _year(after[used:])
        if year is not None:
            return _valid(year, month, day)
    for size in (2, 1):
        day, taken = _day_number(before[-size:]) if len(before) >= size else (None, 0)
        if day is not None and taken == size:
            year = _year(after)
            return _valid(year, month, day) if year is not None else None
    return None


def _month(token: str) -> int:
    """1-12 for a month's name or its short form ('sept', 'feb'), else 0."""
    if len(token) < 3:
        return 0
    return next(
        (i + 1 for i, m in enumerate(_MONTHS) if m.startswith(token)),
        0,
    )


def _day_number(tokens: list[str]) -> tuple[int | None, int]:
    """A day of the month at the start of ``tokens`` and how many tokens it took."""
    if not tokens:
        return None, 0
    first = re.sub(r"(st|nd|rd|th)$", "", tokens[0]) if tokens[0][:1].isdigit() else tokens[0]
    if first.isdigit() and len(first) <= 2:
        return (int(first), 1) if 1 <= int(first) <= 31 else (None, 0)
    tens = {"twenty": 20, "thirty": 30}.get(first)
    if tens and len(tokens) > 1:
        unit = _ORDINALS.get(tokens[1], NUMBER_VALUES.get(tokens[1]))
        if unit is not None and 1 <= unit <= 9:
            return tens + unit, 2
    value = _ORDINALS.get(first, NUMBER_VALUES.get(first))
    return (value, 1) if value is not None and 1 <= value <= 31 else (None, 0)


def _year(tokens: list[str]) -> int | None:
    """'1980', 'nineteen eighty', 'nineteen eighty five', 'two thousand three', 'twenty ten'."""
    if not tokens:
        return None
    if tokens[0].isdigit() and len(tokens[0]) == 4:
        return int(tokens[0])
    values = [NUMBER_VALUES.get(t) for t in tokens[:4]]
    if tokens[:2] == ["two", "thousand"]:
        rest = [v for v in values[2:] if v is not None]
        return 2000 + _pair(rest)
    if values[0] is not None and 10 <= values[0] <= 20 and len(values) > 1:
        low = [v for v in values[1:] if v is not None]
        if tokens[1:2] == ["hundred"]:
            return values[0] * 100
        if low:
            return values[0] * 100 + _pair(low)
    return None


def _pair(values: list[int]) -> int:
    """'eighty five' -> 85, 'oh three' is read as 3 (the 'oh' is not a number word)."""
    if not values:
        return 0
    if values[0] >= 20 and len(values) > 1 and values[1] < 10:
        return values[0] + values[1]
    return values[0]


def _valid(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def name_key(text: str) -> str:
    """A name compared by its words, with 'Dr' as 'doctor'."""
    return " ".join(_TITLES.get(t, t) for t in words(text).split())


def mentions_name(said: str, name: str) -> bool:
    """Whether ``said`` ('doctor lee please', 'Dr. Lee', 'Lee') names ``name`` ('Doctor Lee'):
    its last name is among the words said, and any title said is the name's own."""
    said_words, name_words = name_key(said).split(), name_key(name).split()
    if not name_words or name_words[-1] not in said_words:
        return False
    titles = {"doctor", "nurse"}
    return not (titles & set(said_words)) or bool(titles & set(said_words) & set(name_words))
