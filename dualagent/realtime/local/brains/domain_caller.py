"""A scripted caller for any domain: it states a goal, answers from its facts, checks read-backs.

The banking caller (:mod:`.caller`) knows banking phrases; this one knows only its profile, so
it plays a caller of any agent spec (a clinic, a shop...). The registry gives it the sessions
whose profile names a ``domain`` (a banking caller's profile names an ``intent`` instead).

Profile keys read:

- ``seed``; ``persona`` (``type``, ``patience_level``, ``provides_clear_info``);
- ``goal``: ``primary_goal`` (what it asks for first), ``secondary_goals`` (raised one by one
  when asked if there is anything else);
- ``situation``: said when asked what the call is about and no fact fits, or as the goal when
  there is none;
- ``facts``: ``{name: value}``. A question is answered from the facts whose names' words it
  uses ("date of birth" -> ``date_of_birth``; "name" -> ``patient_name``); dates, times and
  numbers are said in words. A read-back is confirmed when every fact it names has its value,
  and corrected ("No, my date of birth is ...") when one does not.

It loses patience when it must repeat itself, is not understood or has to correct the agent,
and hangs up with the ``end_call`` tool (reason ``completed``, ``not_resolved`` or ``gave_up``).
"""

from __future__ import annotations

from typing import Any

from dualagent.realtime.local.brains import arguments as args_
from dualagent.realtime.local.brains import language as lang
from dualagent.realtime.local.brains.base import BrainInput, ConversationReader, Reply, seeded_rng
from dualagent.realtime.local.brains.caller import (
    ANYTHING_ELSE_CUES,
    GOODBYE_CUES,
    OPENING_CUES,
    REPEAT_CUES,
    TRANSFER_CUES,
    CallerMood,
)

READ_BACK_CUES = ("read that back", "is that right", "is that correct", "go ahead",
                  "yes or no", "does that sound right", "shall i", "should i", "have i got",
                  "is that the one")  # fmt: skip
QUESTION_CUES = ("could you tell me", "can you tell me", "what is your", "what's your",
                 "may i have", "can i have", "could i have", "could you give", "tell me your")  # fmt: skip
OFFER_CUES = ("which would you like", "which one", "would that work", "does that work",
              "works for you", "would you like", "which one do you mean")  # fmt: skip
OFFERING = ("i have", "i've got", "there is", "there's", "available", "i can offer", "how about",
            "we have", "the next", "openings", "options", "i see your")  # fmt: skip
SUCCESS_CUES = ("done", "all set", "booked", "confirmed", "cancelled", "canceled",
                "rescheduled", "ordered", "updated", "scheduled",
                "here is what i found", "checked that")  # fmt: skip
FAILURE_CUES = ("sorry", "unable", "can't", "cannot", "couldn't", "not available", "no free",
                "fully booked", "no openings", "we have no", "has no", "there are no",
                "no longer", "didn't work", "don't have", "only ones")  # fmt: skip
# Words of a fact's name, and what a question says for them.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("name", "called", "who am i speaking"),
    "birth": ("birth", "born", "birthday"),
    "date": ("date",),
    "phone": ("phone", "telephone", "reach you", "contact", "mobile", "number"),
    "email": ("email", "e mail"),
    "reason": ("reason", "why", "what for", "brings you", "about", "problem", "purpose",
               "symptoms", "concern", "what's wrong", "visit"),
    "preferred": ("prefer", "preferred", "would you like", "want", "suit", "best for you"),
    "time": ("time", "when", "morning", "afternoon", "o'clock"),
    "day": ("day", "when", "which day"),
    "doctor": ("doctor", "physician", "who would you", "provider"),
    "medication": ("medication", "medicine", "prescription", "drug", "refill"),
    "pharmacy": ("pharmacy", "chemist"),
    "address": ("address", "where do you live"),
    "insurance": ("insurance", "insurer", "cover"),
    "appointment": ("appointment", "booking"),
    "reference": ("reference", "confirmation", "booking number"),
    "quantity": ("how many", "number of", "quantity"),
    "size": ("size", "how big", "what size"),
}  # fmt: skip
VERB_GROUPS = (
    ("book", "make", "schedule", "arrange"),
    ("reschedule", "move", "change", "shift", "postpone", "rebook"),
    ("cancel", "drop"),
    ("refill", "renew", "order"),
)
_GENERIC = {"of", "the", "my", "your", "patient", "caller", "customer", "full", "id", "number"}
_ORDINAL = ("first", "second", "third")


class DomainCallerBrain(CallerMood):
    """Deterministic persona-driven caller of any domain; one instance per session."""

    def __init__(self, profile: dict[str, Any]) -> None:
        self.profile = profile
        self.rng = seeded_rng(profile, "caller")
        persona = profile.get("persona") or {}
        self.kind: str = str(persona.get("type", "typical"))
        self.patience = float(persona.get("patience_level", 7))
        self.clarity = float(persona.get("provides_clear_info", 0.9))
        goal = profile.get("goal") or {}
        self.situation = str(profile.get("situation") or "").strip()
        self.primary = str(goal.get("primary_goal") or "").strip() or _first_sentence(
            self.situation
        )
        self.topics: list[str] = [str(g) for g in goal.get("secondary_goals") or []]
        self.facts: dict[str, Any] = dict(profile.get("facts") or {})
        self.reader = ConversationReader()
        self.opened = False
        self.primary_done = False
        self.finished = False
        self.restated = 0
        self.gave_partial = False
        self.given: set[str] = set()  # facts it has said
        self.goal_repeats = 0
        self.statement: str | None = None
        self.last_statement = ""
        self.understood = True
        self.demanded_person = False  # a frustrated caller out of patience asks once
        self.impatient_replies = 0

    # ------------------------------------------------------------------ entry point

    def respond(self, given: BrainInput) -> Reply:
        heard = self.reader.heard(self.reader.new_entries(given.conversation))
        mood = given.mood
        reply = self._out_of_patience(mood)
        if reply is None:
            reply = self._barge_in(heard) if given.barge_in else self._decide(heard)
            if not given.barge_in:  # a cut-in has its own sharp lead-in
                reply.text = self._with_mood(reply, mood)
        if reply.text and not reply.text.startswith(("Sure. ", "I just said. ", "Again: ")):
            self.last_statement = self.statement or reply.text
        self.statement = None
        if any(name == "end_call" for name, _ in reply.tool_calls):
            self.finished = True
        reply.tool_calls = [
            (n, a) for n, a in reply.tool_calls if not given.tools or n in given.tools
        ]
        return reply

    # ------------------------------------------------------------------ decisions

    def _decide(self, heard: str) -> Reply:
        if self.finished:
            return Reply("")
        if not heard:
            return Reply(self._opening() if not self.opened else "Hello? Are you still there?")
        failed = lang.has_any(heard, FAILURE_CUES)
        # Done when the agent says so, or moves on ("anything else?") without an apology.
        finished = SUCCESS_CUES + ANYTHING_ELSE_CUES
        if self.opened and not failed and lang.has_any(heard, finished):
            self.primary_done = True
        if lang.has_any(heard, TRANSFER_CUES):
            return Reply(
                self._style(
                    "Okay, I'll hold.", "Fine. I'll hold.", "Oh, alright, I'll wait.", "Okay."
                )
            )
        if lang.has_any(heard, GOODBYE_CUES):
            return self._hang_up(
                "completed" if self.primary_done else "not_resolved",
                self._style(
                    "Thank you, goodbye.",
                    "Right. Bye.",
                    "Thank you, dear. Goodbye.",
                    "Thanks, bye.",
                ),
            )
        if (
            self.kind == "elderly"
            and len(heard.split()) > 18
            and self.rng.random() < 0.3
            and not lang.has_any(heard, ("slower",))
        ):
            return Reply("I'm sorry, dear, could you say that again a little slower?")
        theirs = self._in_their_words(heard)
        if theirs:
            return Reply(theirs)
        if lang.has_any(heard, REPEAT_CUES) and self.last_statement:
            self._lose_patience(1.5)
            again = self.last_statement
            if again == self._goal_sentence():  # not understood: say it another way
                self.goal_repeats += 1
                again = self._goal_sentence(self.goal_repeats)
            return self._maybe_give_up() or Reply(
                self._style("Sure. ", "I just said. ", "Sure. ", "Again: ") + again
            )
        if not self.opened:
            return Reply(self._opening())
        if lang.has_any(heard, READ_BACK_CUES) and not lang.has_any(heard, ANYTHING_ELSE_CUES):
            return self._check_read_back(heard)
        if self._offered(heard):
            return Reply(self._choose(heard))
        asked = self._asked_facts(heard)
        if asked:
            return Reply(self._answer(asked))
        if lang.has_any(heard, ANYTHING_ELSE_CUES):
            return self._anything_else(heard, failed)
        if lang.has_any(heard, OPENING_CUES):
            return Reply(self._goal_sentence())
        choice = self._fact_among_choices(heard) or self._either(heard)
        if choice:
            return Reply(choice)
        if self._asks_about_reason(heard) and self.situation:
            return Reply(_first_person(self.situation))
        untold = [k for k in self.facts if k not in self.given]
        if lang.has_any(heard, QUESTION_CUES) and untold:
            # A question it did not follow (misheard?): the next thing it has not said yet.
            return Reply(self._answer(untold[:1]))
        self.understood = False
        self._lose_patience(1.0)
        return self._maybe_give_up() or Reply(self._nudge())

    def _barge_in(self, heard: str) -> Reply:
        """Cutting in: answer what was already heard, or say what moves things along."""
        patience, self.understood = self.patience, True
        reply = self._decide(heard)
        if not self.understood:
            self.patience = patience  # interrupting is its own choice: no patience lost
        lead = self._style("Sorry, ", "Look, ", "Oh, sorry dear, ", "Yes, yes. ")
        if self.understood and heard and reply.text:
            if reply.tool_calls:  # a goodbye needs no "sorry"
                return reply
            return Reply(lead + _lower_first(reply.text), reply.tool_calls)
        if not self.primary_done and not self.given:  # the agent is still working out why
            return Reply(lead + _lower_first(self._goal_sentence(self.goal_repeats)))
        return Reply(
            lead + self._style("go ahead.", "just get on with it.", "please go on.", "go on.")
        )

    # ------------------------------------------------------------------ what it says

    def _opening(self) -> str:
        self.opened = True
        lead = self._style(
            "Hi. ",
            "Look, I've been waiting ages to get through. ",
            "Oh, hello dear. ",
            "Hi, quickly. ",
        )
        self.statement = self._goal_sentence()  # what a repeat request repeats (no greeting)
        return lead + self.statement

    def _goal_sentence(self, attempt: int = 0) -> str:
        """The goal in its words; on later attempts with its verb put another way ("move"
        -> "reschedule"), as people do when they are not understood."""
        goal = self.primary
        group = _verb_group(goal)
        if attempt and group:
            verb = goal.split()[0].lower()
            others = [w for w in group if w != verb]
            goal = others[(attempt - 1) % len(others)] + goal[len(verb) :]
        return _first_person(goal) or "I need some help, please."

    def _in_their_words(self, heard: str) -> str | None:
        """The agent asks what it wants, naming it in other words ("book, reschedule or
        cancel?"): the goal with the agent's word for it."""
        group = _verb_group(self.primary)
        if (
            self.primary_done
            or not group
            or not lang.has_any(heard, (" or ", "would you like", "do you want"))
        ):
            return None
        if not (
            " or " in f" {args_.canon(heard)} "
            or lang.has_any(heard, ("would you like to", "do you want to"))
        ):
            return None
        verb = self.primary.split()[0].lower()
        said = next((w for w in group if w != verb and lang.has_any(heard, (w,))), None)
        if said is None:
            return None
        return _first_person(said + self.primary[len(verb) :])

    def _nudge(self) -> str:
        self.restated += 1
        return self._style("Sorry, ", "Look, ", "I'm sorry, dear, ", "") + _lower_first(
            _first_person(self.primary, still=True)
        )

    def _asked_facts(self, heard: str) -> list[str]:
        """The facts a question asks for, best first (two at most, on different words)."""
        said = args_.canon(heard).split()
        scored = []
        for position, key in enumerate(self.facts):
            words = _key_words(key)
            hits = {w for w in words if _mentions(heard, said, w)}
            if hits:
                scored.append((-len(hits), len(words) - len(hits), position, key, hits))
        scored.sort(key=lambda s: s[:3])
        chosen: list[str] = []
        used: set[str] = set()
        for _, unmatched, _, key, hits in scored:
            # A second fact only when the question names all of it ("name and date of birth").
            if not hits & used and (not chosen or unmatched == 0) and len(chosen) < 2:
                chosen.append(key)
            used |= hits
        return sorted(chosen, key=lambda k: _first_mention(heard, said, k))

    def _answer(self, keys: list[str]) -> str:
        # A caller who is not always clear gives only a first name, once.
        if (
            len(keys) >= 1
            and "name" in _key_words(keys[0])
            and not self.gave_partial
            and self.rng.random() > self.clarity
        ):
            self.gave_partial = True
            first = str(self.facts[keys[0]]).split(" ")[0]
            return self._style("It's {f}.", "{f}.", "Oh, it's {f}, dear.", "{f}.").format(f=first)
        self.given.update(keys)
        self.gave_partial = self.gave_partial or any("name" in _key_words(k) for k in keys)
        parts = [self._fact_sentence(k) for k in keys]
        text = ", and ".join(parts)
        return text[0].upper() + text[1:] + "."

    def _fact_sentence(self, key: str) -> str:
        words = [
            w
            for w in args_.label(key).split()
            if w not in ("patient", "caller", "customer", "full", "my")
        ]
        what = " ".join(words) or "name"
        if words[-1:] in (["reason"], ["symptoms"], ["concern"]):
            return f"it's for {say_fact(self.facts[key])}"
        return f"my {what} is {say_fact(self.facts[key])}"

    def _check_read_back(self, heard: str) -> Reply:
        wrong = [k for k in self.facts if self._misheard(k, heard)]
        if not wrong:
            if not lang.has_any(heard, OFFER_CUES + READ_BACK_CUES):
                return Reply("Yes.")
            return Reply(
                self._style(
                    "Yes, that's right.", "Yes. Go ahead.", "Yes, that's right, dear.", "Yes."
                )
            )
        self._lose_patience(1.0)
        key = wrong[0]
        if _is_text(self.facts[key]):  # name it, so the agent knows what to change
            correction = f"No, the {args_.label(key)} is {say_fact(self.facts[key])}."
        else:
            correction = f"No, {self._fact_sentence(key)}."
        return self._maybe_give_up() or Reply(correction)

    def _misheard(self, key: str, heard: str) -> bool:
        """The read-back names this fact (its name, or part of a name) with another value."""
        value_words = args_.canon(say_fact(self.facts[key])).split()
        said = set(args_.canon(heard).split())
        if not value_words:
            return False
        named = lang.has_any(args_.canon(heard), (args_.canon(args_.label(key)),))
        if "name" in _key_words(key) and not named:
            named = bool(set(value_words) & said)  # part of a name said back
        if not named:
            return False
        if _is_text(self.facts[key]):  # free words: close enough is right ("checkup")
            joined = "".join(args_.canon(heard).split())
            common = [w for w in value_words if w in said or w in joined]
            return "".join(value_words) not in joined and len(common) < 0.6 * len(value_words)
        return not set(value_words) <= said

    def _offered(self, heard: str) -> bool:
        """Options put to it ("I have ... or ... Which would you like?"), not a question."""
        return (
            lang.has_any(heard, OFFER_CUES)
            and lang.has_any(heard, OFFERING)
            and not lang.has_any(heard, ANYTHING_ELSE_CUES)
        )

    def _choose(self, heard: str) -> str:
        """Pick an offered option: the one most like its facts, else the first."""
        said = args_.canon(heard)
        chunks = [c for c in said.split(" or ") if c.strip()]
        if len(chunks) <= 1:
            return self._style(
                "Yes, that works.", "Fine, that works.", "Yes, that would be lovely.", "Yes, fine."
            )
        wishes = set(args_.canon(" ".join(say_fact(v) for v in self.facts.values())).split())
        wishes |= {"a"} if lang.has_any(" ".join(wishes), ("morning",)) else set()
        wishes |= {"p"} if lang.has_any(" ".join(wishes), ("afternoon",)) else set()
        scores = [len(set(c.split()) & wishes) for c in chunks[:3]]
        best = scores.index(max(scores))
        return self._style(
            "The {o} one, please.",
            "The {o} one.",
            "The {o} one would be lovely, please.",
            "The {o} one.",
        ).format(o=_ORDINAL[best])

    def _fact_among_choices(self, heard: str) -> str | None:
        """A question listing choices, one of which is a fact's value: that value."""
        said = f" {args_.canon(heard)} "
        if " or " not in said:
            return None
        for key, value in self.facts.items():
            spoken = args_.canon(say_fact(value))
            if spoken and f" {spoken} " in said:
                self.given.add(key)
                return f"{spoken.capitalize()}, please."
        return None

    def _either(self, heard: str) -> str | None:
        """A question with choices it has no fact for ("morning or afternoon"): the first."""
        words = args_.canon(heard).split()
        if (
            "or" in words
            and words.index("or") > 0
            and lang.has_any(heard, ("which", "would you", "could you", "tell me"))
        ):
            return f"{words[words.index('or') - 1].capitalize()}, please."
        return None

    def _asks_about_reason(self, heard: str) -> bool:
        return lang.has_any(heard, SYNONYMS["reason"])

    def _anything_else(self, heard: str, failed: bool) -> Reply:
        if not self.primary_done and not failed and self.restated < 2:
            self._lose_patience(1.0)
            return self._maybe_give_up() or Reply(self._nudge())
        if self.topics and (self.primary_done or not failed):
            topic = self.topics.pop(0)
            return Reply(
                self._style("Yes, one more thing. ", "Yes. ", "Oh, yes, dear. ", "Quickly: ")
                + _first_person(topic, also=True)
            )
        if not self.primary_done:
            return Reply(
                self._style(
                    "No, that's all then. Thanks anyway.",
                    "No. That's all.",
                    "No, that's all, dear.",
                    "No, that's all.",
                )
            )
        return Reply(
            self._style(
                "No, that's all. Thank you for your help.",
                "No, that's all.",
                "No, that's all, dear. Thank you for being so patient with me.",
                "No, that's all. Thanks.",
            )
        )

    # ------------------------------------------------------------------ patience

    def _lose_patience(self, amount: float) -> None:
        factor = {"frustrated": 1.5, "hurried": 1.3, "elderly": 0.6}.get(self.kind, 1.0)
        self.patience -= amount * factor

    def _maybe_give_up(self) -> Reply | None:
        if self.patience > 0:
            return None
        if self.kind == "frustrated" and not self.demanded_person:
            self.demanded_person = True
            return Reply("This is ridiculous. I want to speak to a real person, now.")
        return self._hang_up("gave_up", "Forget it, I'll call back later. Goodbye.")

    def _style(self, typical: str, frustrated: str, elderly: str, hurried: str) -> str:
        return {"frustrated": frustrated, "elderly": elderly, "hurried": hurried}.get(
            self.kind, typical
        )


# ---------------------------------------------------------------------- helpers


def say_fact(value: Any) -> str:
    """A fact as the caller says it: dates and times in words, long numbers digit by digit."""
    if isinstance(value, str) and args_.say_text(value) == value.strip():  # not a date or time
        digits = value.replace(" ", "").replace("-", "")
        if digits.isdigit() and len(digits) > 4:
            return lang.say_digits(digits)  # a phone or reference number
    return args_.say_value(value)


def _verb_group(goal: str) -> tuple[str, ...] | None:
    """The words for the goal's first word ('move' -> reschedule, move, change...)."""
    verb = goal.split()[0].lower() if goal.split() else ""
    return next((g for g in VERB_GROUPS if verb in g), None)


def _is_text(value: Any) -> bool:
    """Free words (a reason), not a name, date, time or number."""
    if not isinstance(value, str) or args_.say_text(value) != value.strip():
        return False
    return len(value.split()) > 2 or not value.istitle()


def _key_words(key: str) -> list[str]:
    return [w for w in args_.label(key).split() if w not in _GENERIC] or args_.label(key).split()


def _mentions(heard: str, said: list[str], word: str) -> bool:
    if lang.has_any(heard, SYNONYMS.get(word, ())):
        return True
    return any(w == word or (len(word) >= 4 and w.startswith(word[:-1])) for w in said)


def _first_mention(heard: str, said: list[str], key: str) -> int:
    """Where a question first asks for this fact (answers keep the question's order)."""
    spots = [i for i, w in enumerate(said) for k in _key_words(key) if _mentions(w, [w], k)]
    return min(spots, default=len(said))


def _first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".") if text else ""


_PRONOUNS = {"you": "I", "your": "my", "yours": "mine", "you're": "I'm", "you've": "I've",
             "yourself": "myself", "are": "am"}  # fmt: skip


def _first_person(text: str, *, still: bool = False, also: bool = False) -> str:
    """A goal or situation as the caller says it: 'Book a check-up' -> "I'd like to book a
    check-up."; 'You have a sore throat' -> 'I have a sore throat.'"""
    text = text.strip().rstrip(".!")
    if not text:
        return ""
    words = text.split()
    if words[0].lower() in ("you", "your", "you're", "you've"):
        out, after_you = [], False
        for w in words:
            low = w.lower()
            if low == "are" and not after_you:
                out.append(w)
                continue
            out.append(_PRONOUNS.get(low, w))
            after_you = low == "you"
        sentence = " ".join(out)
    elif words[0].lower() in ("i", "i'm", "i'd", "my", "i've"):
        sentence = text
    else:
        lead = "I still need to" if still else "I'd also like to" if also else "I'd like to"
        sentence = f"{lead} {text[0].lower()}{text[1:]}"
    sentence = sentence[0].upper() + sentence[1:]
    return sentence + "."


def _lower_first(text: str) -> str:
    first, _, rest = text.partition(" ")
    if first in ("I", "I'd", "I'm", "I've", "I'll") or not first:
        return text
    return first[0].lower() + first[1:] + (" " + rest if rest else "")
