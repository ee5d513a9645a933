"""A scripted caller that plays a persona with a goal.

Everything it needs comes from the profile section of its session instructions: personality
(patience, clarity, interrupting), goal (primary, secondary goals) and the facts it knows (name,
date of birth, card, address). It answers what it hears the agent ask, pursues its secondary
goals once the primary one is done, loses patience when it must repeat itself or is not
understood, and hangs up (the ``end_call`` tool) when it is finished or has had enough.
"""

from __future__ import annotations

from typing import Any

from dualagent.mood import FRUSTRATION_SHOWS, impatient
from dualagent.realtime.local.brains import language as lang
from dualagent.realtime.local.brains.base import BrainInput, ConversationReader, Reply, seeded_rng

GOODBYE_CUES = (
    "goodbye",
    "good bye",
    "have a great day",
    "have a nice day",
    "have a good day",
    "take care",
)
TRANSFER_CUES = (
    "transferring you",
    "transfer you",
    "please hold",
    "one of my colleagues",
    "a colleague",
)
REPEAT_CUES = ("didn't catch", "say that again", "could you repeat", "didn't quite", "sorry could you",
               "couldn't understand", "trouble understanding")  # fmt: skip
ANYTHING_ELSE_CUES = (
    "anything else",
    "something else",
    "else i can help",
    "anything more",
    "how else",
)
OPENING_CUES = ("how can i help", "how may i help", "what can i do for you", "help you today")

# Secondary goals become topics the caller raises once the primary goal is done.
TOPIC_QUESTIONS: list[tuple[tuple[str, ...], str, tuple[str, ...]]] = [
    (("deliver", "timeline", "arrive", "shipping"), "How long will the new card take to arrive?",
     ("business days", "arrive")),
    (("unauthorized", "charges", "fraud"), "Can you check that there are no charges I didn't make?",
     ("transactions", "charge", "no charges")),
    (("secur", "safe", "protect"), "Is my account safe now? Can anyone still use the old card?",
     ("protected", "blocked", "safe")),
]  # fmt: skip


class CallerMood:
    """What both scripted callers do with the call's mood (``response.metadata``): hang up, or
    first ask for a person, when patience runs out; sharper words once frustration shows."""

    kind: str
    finished: bool
    demanded_person: bool
    impatient_replies: int

    def _out_of_patience(self, mood: dict[str, Any] | None) -> Reply | None:
        """The call's mood says patience has run out: a frustrated caller asks for a person
        once, everyone else (and then it too) hangs up."""
        if mood is None or not mood["patience_ran_out"] or self.finished:
            return None
        if self.kind == "frustrated" and not self.demanded_person:
            self.demanded_person = True
            return Reply("That's it, I've had enough. Put me through to a real person, now.")
        return self._hang_up(
            "gave_up", "I've run out of patience. I'll take this elsewhere. Goodbye."
        )

    def _with_mood(self, reply: Reply, mood: dict[str, Any] | None) -> str:
        """The reply's words, sharper once frustration shows (no change to a goodbye)."""
        if any(name == "end_call" for name, _ in reply.tool_calls):
            return reply.text
        if mood is not None and mood["frustration"] >= FRUSTRATION_SHOWS:
            self.impatient_replies += 1
        return impatient(reply.text, mood, self.impatient_replies)

    def _hang_up(self, reason: str, text: str) -> Reply:
        return Reply(text, [("end_call", {"reason": reason})])


class CallerBrain(CallerMood):
    """Deterministic persona-driven caller; one instance per session (a :class:`Brain`,
    registered as ``local-caller``)."""

    def __init__(self, profile: dict[str, Any]) -> None:
        self.profile = profile
        self.rng = seeded_rng(profile, "caller")
        persona = profile.get("persona", {})
        self.kind: str = persona.get("type", "typical")
        self.patience = float(persona.get("patience_level", 7))
        self.clarity = float(persona.get("provides_clear_info", 0.9))
        self.facts: dict[str, Any] = profile.get("facts", {})
        self.intent: str = profile.get("intent", "lost_card")
        goal = profile.get("goal", {})
        self.topics = [
            (question, answered_by)
            for secondary in goal.get("secondary_goals", [])
            for cues, question, answered_by in TOPIC_QUESTIONS
            if any(cue in secondary.lower() for cue in cues)
        ]
        self.reader = ConversationReader()
        self.opened = False
        self.primary_done = False
        self.finished = False
        self.last_said = ""
        self.last_statement = ""  # what to repeat when asked (without "Sure." prefixes)
        self.asked_slower = 0
        self.gave_partial_name = False
        self.gave_identity = False
        self.understood = True  # whether the last decision recognised what was heard
        self.disputed = False
        self.demanded_person = False  # out of patience, a frustrated caller asks once
        self.impatient_replies = 0
        self.charge_confirmed = False  # said yes to the charge the agent read out (cut-in)

    # ------------------------------------------------------------------ entry point

    def respond(self, given: BrainInput) -> Reply:
        fresh = self.reader.new_entries(given.conversation)
        heard = self.reader.heard(fresh)
        mood = given.mood
        reply = self._out_of_patience(mood)
        if reply is None:
            reply = self._barge_in(heard) if given.barge_in else self._decide(heard)
            if not given.barge_in:  # a cut-in has its own sharp lead-in
                reply.text = self._with_mood(reply, mood)
        if reply.text:
            self.last_said = reply.text
            if not reply.text.startswith(("Sure. ", "I just said. ", "Oh, sorry. ", "Again: ")):
                self.last_statement = reply.text
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
            return (
                Reply(self._opening()) if not self.opened else Reply("Hello? Are you still there?")
            )
        if self._primary_answered(heard):  # noted whatever else the agent said
            self.primary_done = True
        if lang.has_any(heard, TRANSFER_CUES):
            return Reply(
                self._style(
                    "Okay, I'll hold.", "Fine. I'll hold.", "Oh, alright, I'll wait.", "Okay, fine."
                )
            )
        if lang.has_any(heard, GOODBYE_CUES):
            return self._hang_up(
                "completed",
                self._style(
                    "Thank you, goodbye.",
                    "Right. Bye.",
                    "Thank you so much, dear. Goodbye.",
                    "Thanks, bye.",
                ),
            )
        # Elderly callers ask for long explanations to be repeated, once in a while.
        if (
            self.kind == "elderly"
            and len(heard.split()) > 18
            and self.asked_slower < 2
            and self.rng.random() < 0.35
        ):
            self.asked_slower += 1
            return Reply("I'm sorry, dear, could you say that again a little slower?")

        asks_name = lang.has_any(
            heard,
            ("full name", "your name", "name please", "the name", "last name", "first and last"),
        )
        asks_dob = lang.has_any(heard, ("date of birth", "birth date", "birthday", "born"))
        asks_digits = lang.has_any(heard, ("last four", "four digits", "card number", "digits"))
        if asks_name or asks_dob or asks_digits:
            return Reply(self._identity(asks_name, asks_dob, asks_digits))
        if lang.has_any(heard, ("house number",)):
            number = (self.facts.get("new_address") or self.facts.get("address", "")).split(" ")[0]
            return Reply(f"It's number {_spoken_numbers(number)}.")
        # "What address / repeat the new address": answer with the address, not the last line.
        if (
            lang.has_any(heard, ("address",))
            and lang.has_any(heard, ("what", "which", "repeat", "new", "where", "send"))
            and not lang.has_any(heard, ("right address", "correct", "is that right", "on file"))
        ):
            address = self.facts.get("new_address") or self.facts.get("address", "")
            return Reply(f"Please send it to {address}.")
        if lang.has_any(heard, REPEAT_CUES) and self.last_said:
            self._lose_patience(1.5)
            return self._maybe_give_up() or Reply(
                self._style("Sure. ", "I just said. ", "Oh, sorry. ", "Again: ")
                + self.last_statement
            )
        if lang.has_any(heard, ("want to dispute", "charge you want", "is that the charge")):
            return Reply(
                self._style(
                    "Yes, that's the one.",
                    "Yes! That's the one I never made.",
                    "Yes, I think that's it.",
                    "Yes.",
                )
            )
        if lang.has_any(heard, ("which card", "which one", "which is it")):
            return Reply(
                self._style(
                    "The {p} card.", "The {p} card, obviously.", "It's my {p} card.", "{p} card."
                ).format(p=self.facts.get("card_product", "gold"))
            )
        if lang.has_any(heard, ("read that back", "read it back")):
            return Reply(self._check_read_back(heard))
        if lang.has_any(
            heard,
            (
                "right address",
                "correct address",
                "that address",
                "is that right",
                "is that correct",
                "address on file",
            ),
        ):
            return Reply(self._confirm_address(heard))
        if lang.has_any(heard, ("new address", "what address", "which address")):
            return Reply(
                f"Please send it to {self.facts.get('new_address') or self.facts.get('address', '')}."
            )
        merchant = self.facts.get("disputed_merchant")
        if merchant and not self.disputed and lang.has_any(heard, _merchant_cues(merchant)):
            # The agent read out the charge the caller never made: say so.
            self.disputed = True
            return Reply(
                self._style(
                    "Wait, that charge at {m} isn't mine. I want to dispute it.",
                    "That charge at {m} is not mine! I want it disputed.",
                    "Oh dear, I never bought anything at {m}. Can you dispute that?",
                    "The {m} charge isn't mine, dispute it please.",
                ).format(m=merchant)
            )
        if lang.has_any(heard, ANYTHING_ELSE_CUES):
            return self._next_topic_or_goodbye(heard)
        if lang.has_any(heard, OPENING_CUES) and not self.opened:
            return Reply(self._opening())
        if not self.opened:
            return Reply(self._opening())
        # Nothing we recognise: nudge towards the goal, and lose a little patience.
        self.understood = False
        self._lose_patience(1.0)
        return self._maybe_give_up() or Reply(self._nudge())

    def _barge_in(self, heard: str) -> Reply:
        """Cutting in: answer what was already heard, or say what moves things along."""
        # Interrupting is the caller's own choice: it costs no patience when nothing was caught.
        patience, self.understood = self.patience, True
        reply = self._decide(heard)
        understood = self.understood
        if not understood:
            self.patience = patience
        lead = self._style("Sorry, ", "Look, ", "Oh, sorry dear, ", "Yes, yes. ")
        if understood and heard:
            return Reply(lead + _continue_sentence(reply.text), reply.tool_calls)
        if not self.gave_identity and self.opened:
            return Reply(lead + self._identity(True, True, False))
        merchant = self.facts.get("disputed_merchant")
        if merchant and self.disputed and not self.charge_confirmed and "charge" in heard.lower():
            # The agent is reading out a charge: the one it called about, surely.
            self.charge_confirmed = True
            return Reply(lead + "yes, that's the one, please dispute it.")
        if self.disputed:  # the charges topic is covered by the dispute
            self.topics = [(q, a) for q, a in self.topics if "charges" not in q]
        if self.primary_done and self.topics:  # got what it called for: on to the next thing
            question, _ = self.topics.pop(0)
            return Reply(lead + _continue_sentence(question))
        if self.primary_done and not self.topics:
            return Reply(
                lead
                + self._style(
                    "that's all I needed, thanks.",
                    "that's all.",
                    "that's all, dear, thank you.",
                    "that's all, thanks.",
                )
            )
        product = self.facts.get("card_product", "gold")
        if not self.primary_done and lang.has_any(
            heard, ("which card", "which one", "which is it")
        ):
            return Reply(lead + f"It's the {product} card.")
        return Reply(
            lead
            + self._style("go ahead.", "just get on with it.", "please go on.", "go on, go on.")
        )

    def _opening(self) -> str:
        text = self._opening_goal()
        merchant = self.facts.get("disputed_merchant")
        if merchant and self.intent == "stolen_card":
            self.disputed = True
            text += (
                f" And there's a charge from {merchant} that I didn't make. I want to dispute it."
            )
        return text

    def _opening_goal(self) -> str:
        self.opened = True
        product = self.facts.get("card_product", "gold")
        goal = {
            "lost_card": {
                "typical": f"Hi. I lost my {product} card and I need a replacement, please.",
                "frustrated": f"Look, I've lost my {product} card and I've been waiting ages to get through. I need a replacement now.",
                "elderly": f"Oh, hello dear. I'm afraid I've lost my {product} card, and I need a new one.",
                "hurried": f"Hi, lost my {product} card, need a replacement, quickly please.",
            },
            "stolen_card": {
                "typical": f"Hi. My {product} card was stolen and I need to block it.",
                "frustrated": f"My {product} card was stolen! I need it blocked right now.",
                "elderly": f"Oh dear, I think my {product} card was stolen from my purse.",
                "hurried": f"My {product} card was stolen, block it fast please.",
            },
            "balance": {"any": "Hi, I'd like to check my account balance, please."},
            "transactions": {"any": "Hi, could you go through my recent transactions with me?"},
            "dispute": {
                "any": f"Hi, there's a charge from {self.facts.get('disputed_merchant', 'a shop')} on my card that I don't recognize. I want to dispute it."
            },
            "address_change": {"any": "Hi, I moved recently and I need to update my address."},
            "human": {"any": "I want to talk to a real person, please."},
        }.get(self.intent, {"any": "Hi, I need some help with my account."})
        return goal.get(self.kind) or goal.get("any") or next(iter(goal.values()))

    def _identity(self, asks_name: bool, asks_dob: bool, asks_digits: bool) -> str:
        name = self.facts.get("full_name", "")
        dob = self.facts.get("date_of_birth")
        parts = []
        # Callers who give unclear information answer only part of the question at first.
        partial = self.rng.random() > self.clarity and not self.gave_partial_name
        if asks_name:
            if partial:
                self.gave_partial_name = True
                return self._style("It's {f}.", "{f}.", "Oh, it's {f}, dear.", "{f}.").format(
                    f=name.split(" ")[0]
                )
            parts.append(f"My name is {name}")
        if asks_dob and dob:
            parts.append(f"my date of birth is {lang.say_date(dob)}")
        if asks_digits and not (asks_name and asks_dob):
            last4 = self.facts.get("card_last4")
            if self.facts.get("knows_card_last4", True) and last4:
                parts.append(f"the last four digits are {lang.say_digits(last4)}")
            else:
                parts.append("I'm sorry, I don't remember the card number")
        if not parts:
            return "Sorry, what do you need?"
        if asks_name and asks_dob:
            self.gave_identity = True
        text = ", and ".join(parts)
        return text[0].upper() + text[1:] + "."

    def _check_read_back(self, heard: str) -> str:
        """Compare the address the agent read back with ours (by words, numbers as words)."""
        spoken = lang.normalize(_spoken_numbers(self.facts.get("new_address") or "")).split()
        ours, theirs = set(spoken), set(lang.normalize(_spoken_numbers(heard)).split())
        # The house number must be right, and most of the rest.
        if spoken and spoken[0] in theirs and len(ours & theirs) / len(ours) >= 0.6:
            return self._style("Yes, that's right.", "Yes.", "Yes, that's right, dear.", "Yes.")
        return f"No. It's {self.facts.get('new_address') or self.facts.get('address', '')}."

    def _confirm_address(self, heard: str = "") -> str:
        if self.facts.get("new_address"):
            answer = self._check_read_back(heard)
            if answer.startswith("Yes"):  # the agent already read back the new address
                return answer
            return f"No, I've moved. My new address is {self.facts['new_address']}."
        return self._style(
            "Yes, that's right.",
            "Yes, that's right. Go on.",
            "Yes, that's right, dear.",
            "Yes, correct.",
        )

    def _primary_answered(self, heard: str) -> bool:
        cues = {
            # The delivery time is the part recognition gets right ("ordered" often not).
            "lost_card": (
                "has been ordered",
                "been ordered",
                "will arrive",
                "business day",
                "five to seven",
                "on its way",
                "already on its way",
            ),
            "stolen_card": (
                "has been ordered",
                "been ordered",
                "will arrive",
                "business day",
                "five to seven",
                "on its way",
            ),
            "balance": ("account has", "balance is"),
            "transactions": ("recent transactions are",),
            "dispute": ("dispute is open", "provisional credit"),
            "address_change": ("address has been updated", "updating your address"),
        }.get(self.intent, ())
        return lang.has_any(heard, cues)

    def _next_topic_or_goodbye(self, heard: str) -> Reply:
        # Drop topics the agent already covered without being asked.
        self.topics = [
            (q, answered) for q, answered in self.topics if not lang.has_any(heard, answered)
        ]
        if self.topics and self.primary_done:
            question, _ = self.topics.pop(0)
            return Reply(
                self._style("Yes, one more thing. ", "Yes. ", "Oh, yes, dear. ", "Quickly: ")
                + question
            )
        if not self.primary_done:
            self._lose_patience(1.0)
            return self._maybe_give_up() or Reply(self._nudge())
        return Reply(
            self._style(
                "No, that's all. Thank you for your help.",
                "No, that's all.",
                "No, that's all, dear. Thank you for being so patient with me.",
                "No, that's all. Thanks.",
            )
        )

    def _nudge(self) -> str:
        product = self.facts.get("card_product", "gold")
        return {
            "lost_card": self._style(
                f"So can you replace my {product} card?",
                f"Can you just replace my {product} card, please?",
                f"I'm sorry, I just need a new {product} card.",
                f"Can you replace my {product} card?",
            ),
        }.get(self.intent, "Can you help me with that?")

    # ------------------------------------------------------------------ patience

    def _lose_patience(self, amount: float) -> None:
        factor = {"frustrated": 1.5, "hurried": 1.3, "elderly": 0.6}.get(self.kind, 1.0)
        self.patience -= amount * factor

    def _maybe_give_up(self) -> Reply | None:
        if self.patience > 0:
            return None
        if self.kind == "frustrated":
            return Reply("This is ridiculous. I want to speak to a real person, now.")
        return self._hang_up("gave_up", "Forget it, I'll call back later. Goodbye.")

    def _style(self, typical: str, frustrated: str, elderly: str, hurried: str) -> str:
        return {"frustrated": frustrated, "elderly": elderly, "hurried": hurried}.get(
            self.kind, typical
        )


def _merchant_cues(merchant: str) -> tuple[str, ...]:
    """Distinctive words of a merchant's name ('Electronics Hub Online' -> 'electronics', ...)."""
    common = {"online", "store", "shop", "the", "and", "inc", "co"}
    return tuple(w for w in lang.normalize(merchant).split() if w not in common and len(w) > 3)


def _spoken_numbers(text: str) -> str:
    """'5 Pine Road' -> 'five Pine Road' (how the address sounds)."""
    return " ".join(
        lang.number_words(int(w)) if w.isdigit() else w for w in text.replace(",", " ").split()
    )


_SENTENCE_STARTERS = {"My", "Yes", "No", "The", "It", "It's", "Can", "That", "Please", "Go",
                      "Just", "What", "So", "And", "Is", "Could", "Wait", "Oh", "Okay", "Fine",
                      "Right", "Thank", "Thanks", "Sure", "Again:", "Quickly:"}  # fmt: skip


def _continue_sentence(text: str) -> str:
    """``text`` after a lead-in like "Sorry, ": "My name is..." -> "my name is..."."""
    first, _, rest = text.partition(" ")
    if first.rstrip(",.!?") in _SENTENCE_STARTERS:
        return first[0].lower() + first[1:] + (" " + rest if rest else "")
    return text
