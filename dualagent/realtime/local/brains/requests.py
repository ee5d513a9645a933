"""What a caller asks of a spec's tools, and what tool results say: the vocabulary and helpers
of the spec-driven agent (:mod:`.agent`), kept apart to keep each module readable."""

from __future__ import annotations

from datetime import date
from typing import Any

from dualagent.realtime.local.brains import arguments as args_
from dualagent.realtime.local.brains import language as lang
from dualagent.realtime.local.brains.arguments import ToolInfo

CHANGING_VERBS = ("book", "cancel", "reschedule", "order", "update", "create", "delete",
                  "change", "submit", "send", "refill", "register", "schedule", "renew")  # fmt: skip
MOVING_VERBS = ("reschedule", "move", "change", "transfer", "switch")
PAST = {"send": "sent", "cancel": "cancelled", "refill": "refilled", "submit": "submitted"}
# What callers say for a tool's verb besides the verb itself.
VERB_PHRASES: dict[str, tuple[str, ...]] = {
    "book": ("make an appointment", "new appointment", "schedule an appointment",
             "see the doctor", "see a doctor", "get an appointment", "an appointment",
             "book", "booking", "come in"),
    "cancel": ("cancel", "call off", "can't make it", "cannot make it", "won't be able",
               "not be able to come"),
    "reschedule": ("reschedule", "move my", "change my appointment", "different day",
                   "different time", "another day", "another time", "postpone", "push back"),
    "refill": ("refill", "renew", "repeat prescription", "more of my", "run out", "running out"),
    "order": ("order", "refill", "renew"),
    "update": ("update", "change my"),
    "find": ("find", "available", "availability", "openings", "free slots"),
    "check": ("check", "status", "look up"),
    "get": ("what are", "what is", "when are", "tell me"),
}  # fmt: skip
HUMAN = ("human", "real person", "representative", "supervisor", "manager", "speak to a person",
         "talk to a person", "someone else", "operator")  # fmt: skip
DONE = ("that's all", "that is all", "that's everything", "nothing else", "that's it",
        "no thank you", "no thanks", "all set", "goodbye", "bye", "i'm good", "i'm done",
        "no that's", "that will be all")  # fmt: skip
REPEAT = ("repeat", "say that again", "pardon", "didn't catch", "didn't hear", "slower",
          "come again", "what did you say", "sorry what")  # fmt: skip
GO_ON = ("go ahead", "go on", "carry on", "continue", "keep going", "get on with it")
FAILURE_FLAGS = ("verified", "found", "available", "success", "valid", "eligible")
_STOP = {"the", "a", "an", "and", "or", "of", "to", "for", "with", "from", "this", "that", "your",
         "caller", "patient", "customer", "their", "them", "into", "when", "only", "after",
         "before", "given", "call", "tool", "use", "used", "returns", "list"}  # fmt: skip


def stem(word: str) -> str:
    """'booking' -> 'book', 'appointments' -> 'appointment' (enough to match a tool's name)."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def same_word(a: str, b: str) -> bool:
    """The same word give or take an ending ('cancelled' and 'cancel')."""
    a, b = stem(a), stem(b)
    return a == b or (min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)))


def score_request(tool: ToolInfo, heard: str, phrases: list[str]) -> float:
    """How strongly ``heard`` asks for ``tool``: the spec's phrases for it, its verb (or what
    callers say for it), the other words of its name, words of its description."""
    said = args_.canon(heard)
    words = said.split()
    score = 3.0 * sum(lang.has_any(said, [args_.canon(p)]) for p in phrases)
    if any(same_word(tool.verb, w) for w in words):
        score += 4.0
    elif lang.has_any(said, VERB_PHRASES.get(tool.verb, ())):
        score += 3.0
    score += 1.5 * sum(any(same_word(n, w) for w in words) for n in tool.words[1:])
    content = {w for w in args_.canon(tool.description).split() if len(w) > 3} - _STOP
    score += min(1.0, 0.5 * sum(any(same_word(c, w) for w in words) for c in content))
    return score


def year_of(today: Any) -> int | None:
    try:
        return date.fromisoformat(str(today)).year
    except ValueError:
        return None


def is_transfer(tool: ToolInfo) -> bool:
    return any(w in ("transfer", "escalate", "human", "handoff") for w in tool.words)


def failed(output: dict[str, Any]) -> bool:
    return output.get("ok") is False or any(output.get(f) is False for f in FAILURE_FLAGS)


def remember(values: dict[str, Any], output: dict[str, Any]) -> None:
    """A result's fields by name (one level of nesting too), for the arguments of later tools."""
    for key, value in output.items():
        if key in ("ok", "error"):
            continue
        if isinstance(value, dict):
            for inner, item in value.items():
                if not isinstance(item, dict | list):
                    values[inner] = item
        elif not isinstance(value, list):
            values[key] = value


def option_records(output: dict[str, Any], field: str) -> list[dict[str, Any]]:
    """Option records holding ``field`` in a result (a list of them, anywhere one level down)."""
    for value in output.values():
        candidates = value if isinstance(value, list) else []
        if isinstance(value, dict):
            candidates = next((v for v in value.values() if isinstance(v, list)), [])
        records = [r for r in candidates if isinstance(r, dict) and field in r]
        if records:
            return records
    return []


def pick_option(options: list[dict[str, Any]], heard: str) -> dict[str, Any] | None:
    """The option the caller named: by ordinal, else by the most words in common."""
    words = args_.canon(heard).split()
    ordinals = {"first": 0, "second": 1, "third": 2, "last": len(options) - 1}
    for word, index in ordinals.items():
        if word in words and index < len(options):
            return options[index]
    said = set(words) - {"a", "m", "p", "at", "the", "on", "with", "and", "or", "please", "one"}
    scores = [len(said & set(args_.canon(args_.record_summary(r)).split())) for r in options]
    best = max(scores, default=0)
    if best >= 2 and scores.count(best) == 1:
        return options[scores.index(best)]
    return None


def generic_reading(tool: ToolInfo, output: dict[str, Any], changes: bool) -> str:
    """A result read without a ``say`` template."""
    fields = {k: v for k, v in output.items() if k not in ("ok", "message")}
    parts = [args_.record_summary(fields, labelled=True)]
    for value in fields.values():  # lists too: records by their readable fields, or as said
        if isinstance(value, list) and value:
            rows = [
                args_.record_summary(r) if isinstance(r, dict) else args_.say_value(r)
                for r in value[:3]
            ]
            parts.append("; ".join(r for r in rows if r))
    summary = ", ".join(p for p in parts if p)
    if changes:
        past = PAST.get(tool.verb) or (
            tool.verb + "d" if tool.verb.endswith("e") else tool.verb + "ed"
        )
        done = f"Done. I've {past} the {tool.noun}" if tool.noun else f"Done. I've {past} it"
        return done + (f": {summary}." if summary else ".")
    return f"Here is what I found: {summary}." if summary else "I've checked that for you."


def fill_arguments(tool: ToolInfo, reason: str) -> dict[str, Any]:
    """Arguments for a tool called without the caller's data (transfer, end_call)."""
    filled: dict[str, Any] = {}
    for name in tool.required:
        choices = args_.enum_choices(tool.properties.get(name, {}))
        filled[name] = choices[0] if choices else reason
    return filled


def just_go_on(heard: str) -> bool:
    return lang.has_any(heard, GO_ON) and len(heard.split()) <= 6
