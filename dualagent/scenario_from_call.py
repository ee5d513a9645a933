"""A real call becomes a scenario: draft the scenario YAML that plays its case again.

The call is read by :func:`~dualagent.real_call.load_real_call` (a recording of ours, or a
transcript JSON of a real call). :func:`draft_scenario` infers, by rules over the caller's
turns, what the caller wants (the sentence that asks), the facts they gave (names, dates of
birth, card digits, amounts, days, phone numbers...: regular expressions, with spoken numbers and
dates read as values) and persona settings (tendency to interrupt from barge-ins, patience from
repeats and impatient words, communication style from turn lengths). A recording of ours also
knows the scenario it played: its goal, facts, situation and checks are taken from the
recording (they are the truth), and the checks the call failed are listed. With a language
model (:func:`llm_reading`: an OpenAI-compatible chat endpoint, ``URL#MODEL``) the goal,
situation and facts come from the model instead of the rules, where it gives them.

The draft is a mapping :func:`~dualagent.scenarios.scenario_from_dict` accepts (checked before
it is written, see :func:`write_draft`). Replaying the caller's own audio turn by turn against
an agent is :mod:`dualagent.realtime.replay` (``--caller-backend replay:PATH``).
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualagent.errors import InputError
from dualagent.real_call import RealCall, RealTurn, load_real_call

__all__ = [
    "RealCall",
    "RealTurn",
    "ScenarioDraft",
    "draft_from_path",
    "draft_scenario",
    "infer_facts",
    "infer_personality",
    "llm_reading",
    "load_real_call",
    "write_draft",
]


# ------------------------------------------------------------------------------ rules: facts

_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_UNITS = {w: i for i, w in enumerate(_UNIT_WORDS.split(" "))}
_UNITS["oh"] = 0
_TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety"
_TENS = {w: 10 * (i + 2) for i, w in enumerate(_TENS_WORDS.split(" "))}
_ORDINAL_WORDS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
)
_ORDINALS = {w: i + 1 for i, w in enumerate(_ORDINAL_WORDS.split(" "))}
_ORDINALS.update({"twentieth": 20, "thirtieth": 30})
_MONTH_WORDS = (
    "january february march april may june july august september october november december"
)
MONTHS = _MONTH_WORDS.split(" ")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBER_WORD = "|".join(
    sorted([*_UNITS, *_TENS, *_ORDINALS, "hundred", "thousand", "and"], key=len, reverse=True)
)
_NAME_WORD = r"[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?"
_NAME = re.compile(
    rf"\b(?:my name is|my name's|this is|i am|i'm|it's)\s+({_NAME_WORD}(?:\s+{_NAME_WORD}){{1,2}})",
    re.IGNORECASE,
)
_TITLE = re.compile(rf"\b(Doctor|Dr\.?|Nurse|Mr\.?|Mrs\.?|Ms\.?)\s+({_NAME_WORD})")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_ISO_DATE = re.compile(r"\b(19\d\d|20\d\d)-(\d\d)-(\d\d)\b")
_MONEY = re.compile(r"(?:\$\s?(\d[\d,]*(?:\.\d\d)?)|\b(\d[\d,]*(?:\.\d\d)?)\s*dollars?\b)", re.I)
_WORD_MONEY = re.compile(rf"\b((?:(?:{_NUMBER_WORD})[\s-]+)+)dollars?\b", re.I)
_LAST4 = re.compile(
    rf"\b(?:last four(?: digits)?|ending(?: in| with)?|ends in|last digits)\b[^.?!]*?"
    rf"((?:(?:\d|{'|'.join(_UNITS)})[\s,-]*){{4}})",
    re.I,
)
_DIGIT_RUN = re.compile(rf"\b((?:(?:\d|{'|'.join(_UNITS)})[\s,.-]*){{7,}})", re.I)
_ADDRESS = re.compile(
    r"\b(?:i live at|my address is|moved to|new address is|address is)\s+(\d+[^.?!]*)", re.I
)
_MERCHANT = re.compile(
    rf"\b(?:charge|payment|purchase|transaction)s?\s+(?:from|at|to|by)\s+((?:{_NAME_WORD}\s?)+)"
)
_REQUEST = re.compile(
    r"\b(?:i'd like to|i would like to|i want to|i need to|i'm calling to|i am calling to|"
    r"i'm calling about|i am calling about|can you|could you|i've lost|i lost|i have lost|"
    r"i'd like|i need|i want)\b",
    re.I,
)


def _words_number(words: list[str]) -> int | None:
    """A number said in words: "two hundred and forty five", "twelve"."""
    total, current, seen = 0, 0, False
    for word in words:
        if word == "and":
            continue
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            return None
        seen = True
    return total + current if seen else None


def _spoken_year(words: list[str]) -> int | None:
    """ "nineteen ninety", "nineteen fifty eight", "two thousand and five", "twenty twenty"."""
    if not words:
        return None
    if "thousand" in words:
        return _words_number(words)
    if (words[0] in _UNITS and _UNITS[words[0]] >= 10) or words[0] in _TENS:
        # "nineteen | ninety", "twenty | twenty"; "twenty one | ..." reads two words as head
        compound = words[0] in _TENS and len(words) > 2 and _UNITS.get(words[1], 10) < 10
        head_len = 2 if compound else 1
        head = _words_number(words[:head_len])
        tail = _words_number(words[head_len:]) if words[head_len:] else 0
        if head is not None and tail is not None and tail < 100:
            return head * 100 + tail
    return None


def _spoken_day(words: list[str]) -> tuple[int, int] | None:
    """A day of the month from the start of ``words``: (day, words used)."""
    if not words:
        return None
    if words[0].isdigit() or re.fullmatch(r"\d+(st|nd|rd|th)", words[0]):
        return int(re.sub(r"\D", "", words[0])), 1
    if words[0] in _ORDINALS:
        return _ORDINALS[words[0]], 1
    if words[0] in _TENS and len(words) > 1 and words[1] in _ORDINALS and _ORDINALS[words[1]] < 10:
        return _TENS[words[0]] + _ORDINALS[words[1]], 2
    return None


def _dates(text: str) -> list[str]:
    """Dates in ``text`` as YYYY-MM-DD: ISO, "March 8th, 1990", "the eighth of March nineteen
    ninety", "March eighth nineteen ninety"."""
    found = [f"{y}-{m}-{d}" for y, m, d in _ISO_DATE.findall(text)]
    words = re.findall(r"[a-z0-9]+", text.lower())
    for i, word in enumerate(words):
        if word not in MONTHS:
            continue
        month = MONTHS.index(word) + 1
        after = words[i + 1 :]
        day = _spoken_day(after)
        rest = after[day[1] :] if day else after
        if day is None and i >= 2 and words[i - 1] == "of":  # "the eighth of March"
            day = _spoken_day(words[i - 2 : i - 1]) or _spoken_day(words[i - 3 : i - 1])
        if day is None:
            continue
        year = None
        if rest and rest[0].isdigit() and len(rest[0]) == 4:
            year = int(rest[0])
        else:
            spoken = []
            for w in rest[:5]:
                if w in _UNITS or w in _TENS or w in ("thousand", "and", "hundred"):
                    spoken.append(w)
                else:
                    break
            while spoken and year is None:
                year = _spoken_year(spoken)
                spoken = spoken[:-1]
        if year is not None and 1900 <= year <= 2100 and 1 <= day[0] <= 31:
            found.append(f"{year:04d}-{month:02d}-{day[0]:02d}")
    return list(dict.fromkeys(found))


def _digits(text: str) -> str:
    return "".join(
        str(_UNITS[w]) if w in _UNITS else w for w in re.findall(r"\d+|[a-z]+", text.lower())
    )


def infer_facts(texts: list[str]) -> dict[str, str]:
    """Facts the caller gave, by rules over their utterances (first mention wins): ``name``,
    ``date_of_birth``, ``card_last4``, ``amount``, ``phone_number``, ``email``, ``address``,
    ``merchant``, ``doctor``, ``preferred_day``."""
    facts: dict[str, str] = {}

    def put(name: str, value: str | None) -> None:
        if value and name not in facts:
            facts[name] = value.strip(" ,.")

    for text in texts:
        if match := _NAME.search(text):
            put("name", match.group(1))
        dates = _dates(text)
        if dates and re.search(r"birth|born|d\.?o\.?b", text, re.I):
            put("date_of_birth", dates[0])
        elif dates:
            put("date", dates[0])
        if match := _LAST4.search(text):
            digits = _digits(match.group(1))
            put("card_last4", digits if len(digits) == 4 else None)
        if match := _MONEY.search(text):
            put("amount", (match.group(1) or match.group(2)).replace(",", ""))
        elif match := _WORD_MONEY.search(text):
            number = _words_number(re.findall(r"[a-z]+", match.group(1).lower()))
            put("amount", str(number) if number is not None else None)
        for match in _DIGIT_RUN.finditer(text):
            digits = _digits(match.group(1))
            if 7 <= len(digits) <= 15 and not _dates(match.group(1)):
                put("phone_number", digits)
        if match := _EMAIL.search(text):
            put("email", match.group(0))
        if match := _ADDRESS.search(text):
            put("address", match.group(1))
        if match := _MERCHANT.search(text):
            put("merchant", match.group(1))
        if match := _TITLE.search(text):
            title = "Doctor" if match.group(1).lower().startswith("d") else match.group(1)
            put("doctor" if title == "Doctor" else "person", f"{title} {match.group(2)}")
        if _REQUEST.search(text):
            day = re.search(rf"\b(?:on|to|for|this|next)\s+({'|'.join(WEEKDAYS)})\b", text, re.I)
            put("preferred_day", day.group(1).capitalize() if day else None)
    return facts


def request_sentence(texts: list[str]) -> str | None:
    """The caller's first sentence that asks for something ("I'd like to move my ...")."""
    for text in texts:
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            if _REQUEST.search(sentence):
                return sentence.strip()
    return None


# ------------------------------------------------------------------------------ rules: persona

_IMPATIENT = re.compile(
    r"\b(?:already told you|as i said|i said|again\?|ridiculous|unacceptable|frustrat\w*|"
    r"hurry|quickly|come on|seriously|manager|supervisor|real person|a human)\b",
    re.I,
)


def _similar(a: str, b: str) -> float:
    words_a, words_b = set(re.findall(r"\w+", a.lower())), set(re.findall(r"\w+", b.lower()))
    if not words_a or not words_b:
        return 0.0
    return len(words_a & words_b) / len(words_a | words_b)


def infer_personality(turns: list[RealTurn]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Persona settings by rules, and the figures they come from.

    - ``tendency_to_interrupt``: the share of the agent's turns (after its first) the caller
      cut into (an interrupted agent turn, or a caller turn that starts before the agent's
      ended);
    - ``patience_level``: 8, one less per impatient phrase and per repeat (a caller utterance
      that says mostly what their previous one said), 1 to 10;
    - ``communication_style`` and ``provides_clear_info``: from the words per caller turn.
    """
    agent_turns = [i for i, t in enumerate(turns) if t.speaker == "agent"][1:]
    cut_in = 0
    for i in agent_turns:
        turn = turns[i]
        nxt = turns[i + 1] if i + 1 < len(turns) else None
        overlapped = (
            nxt is not None
            and nxt.speaker == "caller"
            and None not in (nxt.start_s, turn.end_s)
            and nxt.start_s < turn.end_s  # type: ignore[operator]
        )
        cut_in += bool(turn.interrupted or overlapped)
    callers = [t.text for t in turns if t.speaker == "caller" and t.text]
    repeats = sum(1 for a, b in itertools.pairwise(callers) if _similar(a, b) >= 0.6)
    impatient = sum(len(_IMPATIENT.findall(text)) for text in callers)
    words = [len(text.split()) for text in callers]
    mean_words = sum(words) / len(words) if words else 0.0
    interrupt = round(cut_in / len(agent_turns), 2) if agent_turns else 0.0
    patience = max(1, min(10, 8 - repeats - impatient))
    if mean_words < 6:
        style, clear = "Brief, says only what is asked", 0.8
    elif mean_words > 25:
        style, clear = "Talkative, gives long explanations", 0.7
    else:
        style, clear = "Clear and to the point", 0.9
    traits = ["drafted from a real call"]
    if interrupt >= 0.3:
        traits.append("interrupts")
    if patience <= 4:
        traits.append("impatient")
    personality = {
        "traits": traits,
        "communication_style": style,
        "patience_level": patience,
        "tendency_to_interrupt": interrupt,
        "provides_clear_info": clear,
    }
    figures = {
        "caller_turns": len(callers),
        "agent_turns_cut_into": cut_in,
        "repeats": repeats,
        "impatient_phrases": impatient,
        "mean_words_per_caller_turn": round(mean_words, 1),
    }
    return personality, figures


# ------------------------------------------------------------------------------ the draft


@dataclass
class ScenarioDraft:
    """A drafted scenario: the mapping to write, and what the reader should know about it."""

    data: dict[str, Any]
    failed_checks: list[str] = field(default_factory=list)
    heard_facts: dict[str, str] = field(default_factory=dict)  # the rules' reading
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def yaml(self) -> str:
        import yaml

        header = [f"# Drafted by `dualagent scenario-from-call` from {self.data['description']}"]
        header += [f"# {note}" for note in self.notes]
        body = yaml.safe_dump(self.data, sort_keys=False, allow_unicode=True, width=100)
        return "\n".join(header) + "\n" + body


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")
    return name or "real_call"


def _failed_checks(metadata: dict[str, Any]) -> list[str]:
    """The criteria the recorded call failed: unmet success criteria, failure conditions met."""
    outcome = metadata.get("outcome") if isinstance(metadata.get("outcome"), dict) else {}
    failed = [c.get("name") for c in outcome.get("criteria", []) if not c.get("passed")]
    failed += [c.get("name") for c in outcome.get("failures", []) if c.get("passed")]
    return [str(name) for name in failed if name]


def _bank_caller(scenario: dict[str, Any]) -> dict[str, Any]:
    """A recorded bank scenario's caller overrides (who, which card, what they know)."""
    from dualagent.bank import default_fixture

    customer = scenario.get("customer") if isinstance(scenario.get("customer"), dict) else {}
    caller: dict[str, Any] = {}
    customer_id = scenario.get("customer_id")
    fixture = default_fixture()
    known = {c.customer_id: c for c in fixture.customers}
    if customer_id in known:
        caller["customer_id"] = customer_id
        true_dob = str(known[customer_id].date_of_birth)
        if customer.get("date_of_birth") and str(customer["date_of_birth"]) != true_dob:
            caller["wrong_date_of_birth"] = str(customer["date_of_birth"])
    for key in ("card_product", "new_address", "disputed_merchant"):
        if customer.get(key):
            caller[key] = customer[key]
    if customer.get("knows_card_last4") is False:
        caller["knows_card_last4"] = False
    return caller


def _bank_intent(texts: list[str]) -> str:
    text = " ".join(texts).lower()
    for intent, words in (
        ("human", ("human", "real person", "manager", "supervisor")),
        ("stolen_card", ("stolen", "stole")),
        ("dispute", ("dispute", "don't recognise", "don't recognize", "charge")),
        ("address_change", ("new address", "moved")),
        ("transactions", ("transactions",)),
        ("balance", ("balance",)),
    ):
        if any(w in text for w in words):
            return intent
    return "lost_card"


async def llm_reading(llm: str, call: RealCall) -> dict[str, Any]:
    """What a language model reads from the transcript: goal, situation, facts (a JSON object).

    Raises :class:`~dualagent.errors.InputError` for a bad ``URL#MODEL`` or an endpoint that
    fails or answers something that is not such an object."""
    from dualagent.realtime.local.brains.base import TextDelta
    from dualagent.realtime.local.brains.llm import LlmEndpoint
    from dualagent.realtime.local.chat_client import ChatEndpointError, stream_chat

    try:
        endpoint = LlmEndpoint.parse(llm)
    except ValueError as exc:
        raise InputError(f"--llm: {exc}") from None
    transcript = "\n".join(f"{t.speaker.upper()}: {t.text}" for t in call.turns)
    request = {
        "model": endpoint.model_name,
        "temperature": 0,
        "messages": [
            {
                "role": "system",
                "content": "You read the transcript of a phone call to a customer-service "
                'agent and answer with one JSON object only: {"primary_goal": what the caller '
                "wants, in the caller's words (first person), \"situation\": the caller's "
                'situation in one or two sentences (second person), "facts": {snake_case '
                "name: value} for every fact the caller gave (names, dates as YYYY-MM-DD, "
                "numbers, days)}.",
            },
            {"role": "user", "content": transcript},
        ],
    }
    text = ""
    try:
        async for part in stream_chat(endpoint.base_url, request):
            if isinstance(part, TextDelta):
                text += part.text
    except ChatEndpointError as exc:
        raise InputError(f"--llm: {exc}") from None
    match = re.search(r"\{.*\}", text, re.S)
    try:
        reading = json.loads(match.group(0)) if match else None
    except ValueError:
        reading = None
    if not isinstance(reading, dict):
        raise InputError(f"--llm: the model did not answer a JSON object: {text[:120]!r}")
    return reading


def draft_scenario(
    call: RealCall,
    *,
    name: str | None = None,
    agent: str | None = None,
    reading: dict[str, Any] | None = None,
) -> ScenarioDraft:
    """Draft a scenario from ``call`` (see the module docstring); ``agent`` overrides the
    call's own; ``reading`` is what a language model read (:func:`llm_reading`)."""
    texts = [t.text for t in call.caller_turns]
    heard = infer_facts(texts)
    personality, figures = infer_personality(call.turns)
    metadata = call.metadata
    recorded = metadata.get("scenario") if isinstance(metadata.get("scenario"), dict) else {}
    persona_meta = metadata.get("persona") if isinstance(metadata.get("persona"), dict) else {}
    agent = agent or call.agent or recorded.get("agent")
    from dualagent.agent_spec import DEFAULT_AGENT, AgentSpecError, load_agent
    from dualagent.agents import is_banking

    try:
        spec = load_agent(agent or DEFAULT_AGENT)
    except AgentSpecError as exc:
        raise InputError(f"agent: {exc}") from None
    banking = is_banking(spec)
    notes: list[str] = []
    failed = _failed_checks(metadata)
    request = request_sentence(texts)

    recorded_goal = persona_meta.get("goal") if isinstance(persona_meta.get("goal"), dict) else None
    if recorded_goal:  # the recording knows what the caller was told to get
        goal = dict(recorded_goal)
    else:
        goal = {
            "primary_goal": request or "(what the caller wants: edit me)",
            "success_criteria": [],
            "failure_conditions": ["call terminated"],
        }
        notes.append("success_criteria: add what a good call achieves, with checks")
    goal.setdefault("max_conversation_turns", max(15, len(call.turns) + 4))
    facts: dict[str, Any] = dict(recorded.get("facts") or {}) if recorded else {}
    if not recorded:
        facts = dict(heard)
    situation = str(recorded.get("situation") or "")
    if reading:
        goal["primary_goal"] = str(reading.get("primary_goal") or goal["primary_goal"])
        situation = str(reading.get("situation") or situation)
        llm_facts = reading.get("facts")
        if isinstance(llm_facts, dict) and not recorded:
            facts = {
                _fact_name(k): v if isinstance(v, str | int | float | bool) else str(v)
                for k, v in llm_facts.items()
            }
    if not situation and request:
        situation = f"You call {spec.organisation or spec.name}: {request}"

    source_name = call.source.stem if call.source.is_file() else call.source.name
    scenario_name = name or _safe_name(f"from_{source_name}")
    described = f"the call {str(call.source)!r}"
    if metadata:
        described += f" ({metadata.get('status')}, {metadata.get('end_reason')}"
        outcome = (metadata.get("outcome") or {}).get("result")
        described += f", outcome {outcome})" if outcome else ")"
    persona: dict[str, Any] = {
        "name": _safe_name(f"{scenario_name}_caller"),
        "description": "The caller of a real call, drafted by rules from the transcript.",
        "personality": {"type": "custom", **personality},
        "goal": goal,
    }
    data: dict[str, Any] = {
        "name": scenario_name,
        "description": described,
        "agent": spec.source,
        "persona": persona,
    }
    if banking:
        data["intent"] = str(recorded.get("intent") or _bank_intent(texts))
        caller = _bank_caller(recorded) if recorded else {}
        if caller:
            data["caller"] = caller
        if facts and not recorded:  # the bank's own caller fields come from its records
            notes.append(f"heard in the call (the bank's caller comes from its records): {facts}")
            facts = {}
    else:
        data["intent"] = str(recorded.get("intent") or scenario_name)
        data["situation"] = situation
    if facts:
        data["facts"] = facts
    checks = recorded.get("checks") if isinstance(recorded.get("checks"), dict) else {}
    if checks:
        data["checks"] = _without_nulls(checks)
    if recorded.get("line"):
        data["line"] = recorded["line"]
    if recorded.get("expected_outcome"):
        data["expected_outcome"] = recorded["expected_outcome"]
    if failed:
        notes.append("the original call failed: " + "; ".join(failed))
    elif metadata.get("outcome"):
        notes.append("the original call passed every check")
    if recorded and heard:
        notes.append(f"facts heard in the call by rules: {heard}")
    notes.append(f"persona settings from: {figures}")
    return ScenarioDraft(data, failed, heard, figures, notes)


def _without_nulls(value: Any) -> Any:
    """A recorded check as written by hand: its unset (null) fields left out."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _fact_name(text: Any) -> str:
    name = re.sub(r"\W+", "_", str(text)).strip("_")
    return name if re.match(r"^[A-Za-z]", name) else f"fact_{name}"


def draft_from_path(
    path: str | Path,
    *,
    name: str | None = None,
    agent: str | None = None,
    llm: str | None = None,
) -> ScenarioDraft:
    """Read ``path`` (:func:`load_real_call`) and draft its scenario; with ``llm``
    (``URL#MODEL``) a language model reads the goal, situation and facts."""
    call = load_real_call(path)
    reading = None
    if llm is not None:
        import asyncio

        reading = asyncio.run(llm_reading(llm, call))
    return draft_scenario(call, name=name, agent=agent, reading=reading)


def write_draft(draft: ScenarioDraft, output: str | Path) -> Path:
    """Check that the draft loads (:func:`~dualagent.scenarios.scenario_from_dict`), then write
    it atomically; a draft that does not load raises :class:`~dualagent.errors.InputError`
    and nothing is written."""
    from dualagent.files import write_text_atomic
    from dualagent.scenarios import ScenarioError, scenario_from_dict

    output = Path(output)
    if output.suffix not in (".yaml", ".yml"):
        raise InputError(f"--output {str(output)!r}: expected a .yaml file")
    if output.is_dir():
        raise InputError(f"--output {str(output)!r} is a folder; give a .yaml file")
    if not output.parent.is_dir():
        raise InputError(f"--output {str(output)!r}: no such folder {str(output.parent)!r}")
    text = draft.yaml()
    import yaml

    try:
        scenario_from_dict(yaml.safe_load(text), source=str(output))
    except ScenarioError as exc:
        raise InputError(f"the drafted scenario does not load: {exc}") from None
    write_text_atomic(output, text)
    return output
