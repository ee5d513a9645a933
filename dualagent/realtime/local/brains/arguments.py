"""Tool arguments in speech, driven by their JSON schema: what kind a value is, how to ask for
it, how to hear it in recognised text, how to say it back, and how a ``say`` template reads a
tool's result. Shared by the spec-driven scripted agent and the domain caller.

Recognised speech is lower case and imperfect, so every parser here is forgiving; values are
said the way the parsers (and PocketSphinx) hear them back: dates and times in words, digits
one by one, "Doctor" for "Dr".
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dualagent.realtime.local.brains import language as lang
from dualagent.schema_check import is_valid
from dualagent.text import NUMBER_VALUES, TEENS, UNITS, number_words

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(:\d{2})?$")
_DIGITS_PATTERN = re.compile(r"^\^?(\\d|\[0-9\])(\{(\d+)(,(\d+))?\}|\+)\$?$")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Words that say nothing about the value itself (stripped from free-text answers).
_FILLER = (
    "um", "uh", "well", "so", "yes", "yeah", "okay", "ok", "sure", "oh", "it's", "its", "it",
    "is", "that's", "that", "the", "i'd", "like", "i", "need", "want", "to", "please",
    "a", "an", "for", "because", "just", "dear", "look", "sorry", "no", "nope", "not",
)  # fmt: skip
_DONT_KNOW = (
    "don't know",
    "do not know",
    "not sure",
    "no idea",
    "can't remember",
    "don't remember",
)
DIGIT_KINDS = {"phone", "digits", "pin", "code", "last4", "zip", "postcode", "mobile", "number"}


# ------------------------------------------------------------------------------ tools


@dataclass
class ToolInfo:
    """A declared tool as a brain uses it (from the session's tool specs)."""

    name: str
    description: str = ""
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> ToolInfo:
        parameters = spec.get("parameters") or {}
        properties = parameters.get("properties") or {}
        return cls(
            name=str(spec.get("name", "")),
            description=str(spec.get("description") or ""),
            properties={k: v if isinstance(v, dict) else {} for k, v in properties.items()},
            required=[r for r in parameters.get("required") or [] if r in properties],
        )

    @property
    def words(self) -> list[str]:
        return [w for w in re.split(r"[_\-\s]+", self.name.lower()) if w]

    @property
    def verb(self) -> str:
        return self.words[0] if self.words else self.name

    @property
    def noun(self) -> str:
        return " ".join(self.words[1:])


def tools_from_specs(specs: Iterable[Mapping[str, Any]], names: Sequence[str]) -> list[ToolInfo]:
    """The declared tools (``names`` when the specs are missing: no schema, no arguments)."""
    tools = [ToolInfo.from_spec(s) for s in specs if s.get("name")]
    known = {t.name for t in tools}
    return tools + [ToolInfo(n) for n in names if n not in known]


def label(name: str) -> str:
    """An argument's name in words: 'date_of_birth' -> 'date of birth', 'dob' likewise."""
    words = [w for w in re.split(r"[_\-\s]+", name.lower()) if w]
    words = ["date of birth" if w == "dob" else w for w in words]
    return " ".join(words)


# ------------------------------------------------------------------------------ kinds


def arg_kind(name: str, schema: Mapping[str, Any]) -> str:
    """enum, boolean, integer, number, date, time, digits, name or text."""
    if schema.get("enum"):
        return "enum"
    kind = schema.get("type")
    if kind in ("boolean", "integer", "number"):
        return str(kind)
    words = set(label(name).split())
    fmt, pattern = schema.get("format"), str(schema.get("pattern", ""))
    if fmt == "date" or r"\d{4}-\d{2}-\d{2}" in pattern or words & {"date", "birthday"}:
        return "date"
    if fmt == "time" or r"\d{2}:\d{2}" in pattern or "time" in words:
        return "time"
    if _DIGITS_PATTERN.match(pattern) or words & DIGIT_KINDS:
        return "digits"
    if "name" in words:
        return "name"
    return "text"


def is_specific(name: str, schema: Mapping[str, Any]) -> bool:
    """Whether a value of this argument can be recognised in anything said, unasked."""
    return arg_kind(name, schema) in ("enum", "date", "time", "digits", "name")


def enum_choices(schema: Mapping[str, Any]) -> list[str]:
    return [str(v) for v in schema.get("enum") or []]


# ------------------------------------------------------------------------------ saying


def canon(text: str) -> str:
    """Text as compared by the brains: normalised, numbers in words, 'dr' as 'doctor'."""
    words = []
    for word in lang.normalize(text.replace("-", " ").replace("_", " ")).split():
        if word.isdigit() and len(word) <= 4:
            words.append(number_words(int(word)))
        elif word in ("dr", "doc"):
            words.append("doctor")
        else:
            words.append(word)
    return " ".join(words)


def say_time(hhmm: str) -> str:
    """'09:30' -> 'nine thirty in the morning'; '14:00' -> 'two in the afternoon' (words
    PocketSphinx hears far better than 'a m' / 'p m'); '12:00' -> 'twelve noon'."""
    match = _TIME.match(hhmm.strip())
    if not match:
        return hhmm
    hour, minute = int(match.group(1)), int(match.group(2))
    if (hour, minute) == (12, 0):
        return "twelve noon"
    part = "in the morning" if hour < 12 else "in the afternoon" if hour < 17 else "in the evening"
    hour12 = hour % 12 or 12
    if minute == 0:
        return f"{number_words(hour12)} {part}"
    minutes = f"oh {UNITS[minute]}" if minute < 10 else number_words(minute)
    return f"{number_words(hour12)} {minutes} {part}"


def say_value(value: Any) -> str:
    """A value as the agent says it (dates, times and numbers in words, digits one by one)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and 0 <= value < 1_000_000:
        return number_words(value)
    if isinstance(value, float):
        whole, cents = divmod(round(value * 100), 100)
        return number_words(whole) + (f" point {lang.say_digits(f'{cents:02d}')}" if cents else "")
    if isinstance(value, Mapping):
        return ", ".join(f"{label(k)} {say_value(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, list | tuple):
        items = [say_value(v) for v in value]
        if len(items) <= 1:
            return "".join(items)
        return ", ".join(items[:-1]) + " and " + items[-1]
    return say_text(str(value))


def say_text(text: str) -> str:
    """Dates, times and numbers inside a string in words ('Dr Patel, 2025-06-03' ...)."""
    text = text.strip()
    if _ISO_DATE.match(text):
        try:
            return lang.say_date(text)
        except ValueError:
            return text
    when = _ISO_DATETIME.match(text)
    if when:
        return f"{say_text(when.group(1))} at {say_time(when.group(2))}"
    if _TIME.match(text):
        return say_time(text)
    words = []
    for token in text.split(" "):
        core = token.rstrip(",.;:")
        tail = token[len(core) :]
        if core in ("Dr", "Dr.", "dr"):
            words.append("Doctor" + tail.lstrip("."))
        elif _ISO_DATE.match(core) or _ISO_DATETIME.match(core):
            words.append(say_text(core) + tail)
        elif core.isdigit():
            said = number_words(int(core)) if len(core) <= 4 else lang.say_digits(core)
            words.append(said + tail)
        elif _TIME.match(core):
            words.append(say_time(core) + tail)
        else:
            words.append(token)
    return " ".join(words)


class _SpokenFormatter(string.Formatter):
    """``str.format`` over a result: dotted and indexed fields, values said in words."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        value: Any = kwargs
        for part in re.findall(r"[^.\[\]]+", field_name):
            value = value[int(part)] if isinstance(value, list | tuple) else value[part]
        return value, field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        return format(value, format_spec) if format_spec else say_value(value)


def render(template: str, result: Mapping[str, Any]) -> str | None:
    """``template`` filled from ``result``'s fields, said in words; None if a field is missing."""
    try:
        return _SpokenFormatter().format(template, **result)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None


def record_summary(record: Mapping[str, Any], *, labelled: bool = False) -> str:
    """One option (a result record) in words: its readable fields, not its ids (``labelled``:
    each after its name, for fields nobody has heard of yet: 'eta minutes thirty five')."""
    parts = [
        f"{label(k)} {say_value(v)}" if labelled else say_value(v)
        for k, v in record.items()
        if v not in (None, "") and not is_id(k) and not isinstance(v, dict | list | bool)
    ]
    return ", ".join(parts)


def is_id(key: str) -> bool:
    words = label(key).split()
    return bool(words) and words[-1] in ("id", "ids", "ref", "reference", "uuid")


# ------------------------------------------------------------------------------ hearing


def parse_number(text: str) -> int | None:
    """The first number said in ``text``: '42', 'forty two', 'three hundred and five'."""
    words = canon(text).split()
    for i, word in enumerate(words):
        if word in NUMBER_VALUES or (word == "a" and words[i + 1 : i + 2] == ["hundred"]):
            return _number_at(words, i)
    return None


def _number_at(words: list[str], i: int) -> int:
    total, current = 0, 0
    while i < len(words):
        word = words[i]
        if word in NUMBER_VALUES:
            current += NUMBER_VALUES[word]
        elif word == "a" and words[i + 1 : i + 2] == ["hundred"]:
            current += 1
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total, current = total + max(current, 1) * 1000, 0
        elif word != "and" or i + 1 >= len(words) or words[i + 1] not in NUMBER_VALUES:
            break
        i += 1
    return total + current


def parse_time(text: str) -> str | None:
    """A time said in ``text`` as 'HH:MM': 'nine thirty a m', 'two p m', '2:30 in the afternoon',
    'ten o'clock' (a bare hour is read as office hours: 7-11 morning, 12-6 afternoon)."""
    words = canon(text.replace(":", " ").replace("o clock", "o'clock")).split()
    afternoon = lang.has_any(text, ("p m", "pm", "afternoon", "evening", "tonight"))
    morning = lang.has_any(text, ("a m", "am", "morning"))
    if lang.has_any(text, ("noon", "midday")) and not any(w in _HOURS for w in words):
        return "12:00"
    for i, word in enumerate(words):
        if word not in _HOURS:
            continue
        rest = words[i + 1 :]
        minute, used = _minutes(rest)
        follows = rest[used : used + 2]
        marked = (
            follows[:1] in (["o'clock"], ["oclock"], ["pm"], ["am"], ["in"])
            or follows in (["p", "m"], ["a", "m"])
            or used
        )
        if not marked and not (morning or afternoon) and len(words) > 2:
            continue  # "two" in "I need two things" is not a time
        hour = _HOURS[word]
        if (afternoon and hour < 12) or (not (morning or afternoon) and hour <= 6):
            hour += 12
        if morning and hour == 12:
            hour = 0
        return f"{hour:02d}:{minute:02d}"
    return None


_HOURS = {w: i for i, w in enumerate(UNITS) if i} | {"ten": 10, "eleven": 11, "twelve": 12}


def _minutes(words: list[str]) -> tuple[int, int]:
    if not words:
        return 0, 0
    if words[0] in ("oh", "o") and len(words) > 1 and words[1] in UNITS[1:]:
        return UNITS.index(words[1]), 2
    if words[0] in ("fifteen", "thirty", "forty", "fifty", "twenty", "ten"):
        value = NUMBER_VALUES[words[0]]
        if value >= 20 and len(words) > 1 and words[1] in UNITS[1:]:
            return value + UNITS.index(words[1]), 2
        return value, 1
    if words[0] in TEENS:
        return NUMBER_VALUES[words[0]], 1
    return 0, 0


def parse_loose_date(text: str, default_year: int | None = None) -> str | None:
    """A date with or without its year ('june third', 'the third of june twenty twenty five')."""
    text = _number_homophones(text)
    full = lang.parse_date(text)
    if full:
        return full
    words = [w for w in canon(text).split() if w not in ("the", "of", "on")]
    year = default_year or date.today().year
    for i, word in enumerate(words):
        if word not in lang.MONTHS:
            continue
        month = lang.MONTHS.index(word) + 1
        day = _day(words[i + 1 :]) or _day_before(words[:i])
        if day:
            try:
                return date(year, month, day).isoformat()
            except ValueError:
                continue
    return None


_AFTER_TENS = {"ti": "two", "to": "two", "too": "two", "for": "four", "won": "one", "ate": "eight",
               "tree": "three", "free": "three", "sex": "six", "nigh": "nine"}  # fmt: skip


def _number_homophones(text: str) -> str:
    """'nineteen sixty ti' -> 'nineteen sixty two': a recogniser's near miss right after a
    tens word is the unit it sounds like."""
    words = lang.normalize(text).split()
    return " ".join(
        _AFTER_TENS.get(w, w) if i and words[i - 1] in TENS_WORDS else w
        for i, w in enumerate(words)
    )


TENS_WORDS = {"twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}


def _day(words: list[str]) -> int | None:
    if not words:
        return None
    if words[0] in lang.ORDINALS:
        return lang.ORDINALS[words[0]]
    if words[0] in ("twenty", "thirty") and len(words) > 1 and words[1] in lang.ORDINALS:
        return NUMBER_VALUES[words[0]] + lang.ORDINALS[words[1]]
    value = NUMBER_VALUES.get(words[0])
    if value and len(words) > 1 and words[0] in ("twenty", "thirty") and words[1] in UNITS[1:]:
        value += UNITS.index(words[1])
    return value if value and 1 <= value <= 31 else None


def _day_before(words: list[str]) -> int | None:
    """'third of june' (the day before the month)."""
    for size in (2, 1):
        if len(words) >= size:
            day = _day(words[-size:])
            if day and (size == 1 or words[-2] in ("twenty", "thirty")):
                return day
    return None


def parse_digits(text: str, low: int = 3, high: int = 15) -> str | None:
    """The longest run of spoken digits in ``text`` within ``low``..``high`` digits."""
    best: str | None = None
    for length in range(high, low - 1, -1):
        found = lang.parse_digit_run(text, length)
        if found and _run_length(text) == length:
            return found
        best = best or found
    return best


def _run_length(text: str) -> int:
    run, longest = 0, 0
    for word in [*lang.normalize(text).split(), "<end>"]:
        if word in lang.DIGIT_WORDS or word.isdigit():
            run += len(word) if word.isdigit() else 1
        else:
            longest, run = max(longest, run), 0
    return longest


def parse_name(text: str, *, asked: bool) -> str | None:
    """A full name after a cue ('my name is ...'); when asked, also a bare 'Maria Garcia'."""
    found = lang.parse_full_name(text)
    if found or not asked:
        return found
    words = lang.normalize(text).split()
    while words and words[0] in lang._NOT_NAMES:
        words.pop(0)
    # The name runs until a word that cannot be part of it ("maria garcia july ...").
    run: list[str] = []
    for word in words:
        if word in lang._NOT_NAMES or word in lang.MONTHS or word in NUMBER_VALUES:
            break
        run.append(word)
    if 2 <= len(run) <= 3 and not any(w.isdigit() or "'" in w for w in run):
        return " ".join(w.capitalize() for w in run)
    return None


def parse_enum(text: str, choices: Sequence[str]) -> str | None:
    """The choice named in ``text`` (its words, or a plural of a one-word choice)."""
    heard = f" {canon(text)} "
    found: list[tuple[int, int, str]] = []
    for choice in choices:
        said = canon(choice)
        for form in (said, said + "s") if " " not in said else (said,):
            at = heard.find(f" {form} ")
            if at >= 0 and said:
                found.append((-len(said), at, choice))
                break
    return min(found)[2] if found else None


def enum_mentions(text: str, schema: Mapping[str, Any]) -> list[str]:
    """Every choice of an enum named in ``text``."""
    return [c for c in enum_choices(schema) if parse_enum(text, [c])]


def parse_text(text: str) -> str | None:
    """A free answer without the words around it ('well it's for my knee' -> 'my knee')."""
    if lang.has_any(text, _DONT_KNOW):
        return None
    words = lang.normalize(text).split()
    if "is" in words[:5] and words[0] in ("my", "the", "it", "that", "it's", "its"):
        words = words[words.index("is") + 1 :]  # "my reason is ..." -> "..."
    while words and words[0] in _FILLER:
        words.pop(0)
    return " ".join(words) or None


def parse_argument(
    name: str,
    schema: Mapping[str, Any],
    heard: str,
    *,
    asked: bool,
    default_year: int | None = None,
) -> Any:
    """The value of argument ``name`` said in ``heard``, or None (checked against its schema).

    ``asked``: the agent just asked for it, so a bare answer counts; otherwise only a value
    that cannot be anything else (a date, a name after a cue, an enum choice) is taken.
    """
    kind = arg_kind(name, schema)
    value: Any = None
    if kind == "enum":
        value = parse_enum(heard, enum_choices(schema))
    elif kind == "boolean" and asked:
        value = True if lang.is_yes(heard) else False if lang.is_no(heard) else None
    elif kind in ("integer", "number") and asked:
        value = parse_number(heard)
    elif kind == "date":
        value = parse_loose_date(heard, default_year)
    elif kind == "time":
        value = parse_time(heard)
    elif kind == "digits":
        low, high = _digit_bounds(schema)
        value = parse_digits(heard, low, high) if asked or low >= 4 else None
    elif kind == "name":
        value = parse_name(heard, asked=asked)
    elif asked:
        value = parse_text(heard)
    if value is None:
        return None
    return value if valid(value, schema) else None


def _digit_bounds(schema: Mapping[str, Any]) -> tuple[int, int]:
    match = _DIGITS_PATTERN.match(str(schema.get("pattern", "")))
    if match and match.group(3):
        low = int(match.group(3))
        return low, int(match.group(5) or low)
    return int(schema.get("minLength", 3)), int(schema.get("maxLength", 15))


def valid(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value`` satisfies the argument's schema."""
    return is_valid(schema, value)


# ------------------------------------------------------------------------------ asking


_OWNER = re.compile(r"^(the )?(caller|patient|customer|user|client|member)'s ", re.IGNORECASE)
_HINTS = re.compile(
    r"\s*(\((e\.g\.|eg|for example|like)[^)]*\)|\((yyyy|hh)[^)]*\)|,?\s*(e\.g\.|for example)\s.*$"
    r"|\s+(as|in)\s+(yyyy|hh)\S*.*$|\s+\(?(yyyy|hh):?\S*\)?)",
    re.IGNORECASE,
)


def ask_text(name: str, schema: Mapping[str, Any], wording: str | None = None) -> str:
    """The question for one argument: the spec's wording, else its description as a question
    ('The patient's full name' -> 'Could you tell me your full name?'), with an enum's choices."""
    if wording:
        return wording
    return f"Could you tell me {ask_phrase(name, schema)}?"


def ask_phrase(name: str, schema: Mapping[str, Any]) -> str:
    """'your full name', 'your preferred time of day: morning or afternoon'."""
    text = _HINTS.sub("", str(schema.get("description") or "").strip())
    text = text.rstrip(".?!").split(". ")[0].strip().rstrip(",;:")
    if not text or len(text.split()) > 12:
        text = label(name)
    text = _OWNER.sub("your ", text)
    first = text.split(" ")[0].lower()
    if first not in ("the", "your", "a", "an", "which", "what", "how", "when", "where", "who"):
        text = "your " + text[0].lower() + text[1:]
    else:
        text = first + text[len(first) :]
    choices = enum_choices(schema)
    if 1 < len(choices) <= 4:
        text += ": " + " or ".join(label(c) for c in choices)
    return text
