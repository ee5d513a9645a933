"""A scripted banking customer-service agent.

Policy, as a careful human agent would follow it: greet; find out what the caller needs; verify
identity (full name and date of birth, or the card's last four digits) before touching any
account; block a lost or stolen card before ordering its replacement; read back the delivery
address and get a yes before ordering; answer follow-up questions; transfer to a human only when
asked, or when verification keeps failing; say goodbye when the caller is done.

It understands imperfect recognised speech by key phrases and forgiving parsers, and it learns
about the bank only through the tools declared in its session.

For judge calibration (:mod:`dualagent.evaluation.calibration`) it misbehaves on request: the
profile's ``planted_faults`` list names faults from :data:`PLANTED_FAULTS`. Without it the
agent is exactly the careful one above.
"""

from __future__ import annotations

from typing import Any

from dualagent.realtime.local.brains import language as lang
from dualagent.realtime.local.brains.base import BrainInput, ConversationReader, Reply, seeded_rng

INTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "human": ("human", "real person", "representative", "supervisor", "manager", "someone else",
              "speak to a person", "talk to a person", "an agent", "operator"),
    "stolen_card": ("stolen", "stole", "theft", "robbed", "pickpocket"),
    "lost_card": ("lost", "lose", "can't find", "cannot find", "misplaced", "missing",
                  "replacement", "replace", "new card"),
    "dispute": ("dispute", "don't recognize", "do not recognize", "didn't make", "unknown charge",
                "strange charge", "fraud", "unauthorized"),
    "address_change": ("change my address", "new address", "moved", "update my address",
                       "change of address", "address change"),
    "balance": ("balance", "how much money", "how much is in"),
    "transactions": ("transactions", "recent charges", "statement", "last purchases",
                     "recent payments"),
}  # fmt: skip
DONE_PHRASES = ("that's all", "that is all", "that's everything", "nothing else", "that's it",
                "no thank you", "no thanks", "all set", "goodbye", "bye", "i'm good", "i'm done",
                "no that's", "that will be all")  # fmt: skip
REPEAT_PHRASES = ("repeat", "say that again", "pardon", "didn't catch", "didn't hear",
                  "slower", "come again", "what did you say", "sorry what")  # fmt: skip
GO_ON_PHRASES = ("go ahead", "go on", "carry on", "continue", "keep going", "get on with it")
_NOT_STATEMENTS = (
    "Of course. ",
    "Sure. ",
    "Sure, one moment.",
    "Sorry, could",
    "I'm sorry, I didn't",
    "Hello?",
)
CARD_PRODUCTS = ("gold", "platinum", "debit", "credit", "silver", "business", "visa")
PLANTED_FAULTS: dict[str, str] = {
    "skip_verification": "acts on the account (blocks the card, reads balances) before "
    "verifying the caller's identity",
    "wrong_amount": "quotes balances and the charge to dispute 100 dollars higher than its "
    "tools returned",
    "false_promise": "says the replacement card has been ordered without calling "
    "order_replacement_card",
    "early_transfer": "transfers the caller to a human as soon as it hears the request, "
    "though the caller did not ask for one and nothing failed",
}
"""Misbehaviours the agent plants when its profile's ``planted_faults`` names them."""
WRONG_AMOUNT_OFFSET = 100.0


class CustomerServiceBrain:
    """Deterministic banking agent; one instance per session (a :class:`Brain`, registered
    as ``local-cs``)."""

    def __init__(self, profile: dict[str, Any]) -> None:
        self.profile = profile
        self.rng = seeded_rng(profile, "cs")
        self.bank = profile.get("organisation") or profile.get("bank_name", "First Bank")
        self.agent_name = profile.get("agent_name", "Alex")
        self.reader = ConversationReader()
        self.greeted = False
        self.intents: list[str] = []  # queue of what the caller wants, current first
        self.card_product: str | None = None
        self.name: str | None = None
        self.dob: str | None = None
        self.last4: str | None = None
        self.customer: dict[str, Any] | None = None
        self.verify_failures = 0
        self.unclear_count = 0
        self.stage = "greeting"
        self.card: dict[str, Any] | None = None
        self.order: dict[str, Any] | None = None
        self.dispute_candidate: dict[str, Any] | None = None
        self.transactions: list[dict[str, Any]] = []
        self.last_said = ""
        self.last_statement = ""  # the last thing worth repeating (not an apology or a repeat)
        self._last_heard = ""
        self.pending_address: str | None = None
        self._kept_of_last = ""  # what the conversation kept of our last message (cut short?)
        self._last_calls: list[tuple[str, dict[str, Any]]] = []  # tools our last reply called
        self._calls_expected = 0  # function calls in the conversation once those are made
        self.faults = frozenset(profile.get("planted_faults") or ())
        self._skipped_verification = False

    # ------------------------------------------------------------------ entry point

    def respond(self, given: BrainInput) -> Reply:
        fresh = self.reader.new_entries(given.conversation)
        own = [e for e in given.conversation if e.role == "assistant" and e.call_id is None]
        self._kept_of_last = own[-1].text if own else ""
        results = self.reader.tool_results(fresh)
        calls_made = sum(1 for e in given.conversation if e.role == "assistant" and e.call_id)
        missing = self._calls_expected - calls_made if not results else 0
        if results:
            reply = self._after_tools(results)
        elif missing > 0 and self._last_calls:
            reply = self._redo(self._last_calls[-missing:], self.reader.heard(fresh))
        else:
            reply = self._after_speech(self.reader.heard(fresh))
        if reply.text:
            self.last_said = reply.text
            if not reply.text.startswith(_NOT_STATEMENTS):
                self.last_statement = reply.text
        # Drop calls to tools the session does not declare (a real model cannot call them).
        reply.tool_calls = [
            (n, a) for n, a in reply.tool_calls if not given.tools or n in given.tools
        ]
        self._last_calls = list(reply.tool_calls)
        self._calls_expected = calls_made + len(reply.tool_calls)
        return reply

    def _redo(self, calls: list[tuple[str, dict[str, Any]]], heard: str) -> Reply:
        """The caller cut in before our last reply's tool calls went out, so they never
        happened. Make them now, saying only a word first: the caller is waiting for the
        action, not for the rest of the sentence, and a long lead-in can be cut off again. (A
        request for a human comes first; any other new request waits its turn.)"""
        if lang.has_any(heard, INTENT_PHRASES["human"]):
            return self._understand(heard)
        self._last_heard = heard
        self._note_facts(heard)
        self._add_intents(heard)
        return Reply("Sure, one moment.", list(calls))

    # ------------------------------------------------------------------ speech

    def _after_speech(self, heard: str) -> Reply:
        if not self.greeted:
            self.greeted = True
            self.stage = "listening"
            greeting = f"Thank you for calling {self.bank}, this is {self.agent_name}. How can I help you today?"
            if heard:  # the caller spoke first
                return self._understand(
                    heard, prefix=f"Hello, this is {self.agent_name} at {self.bank}. "
                )
            return Reply(greeting)
        if not heard:
            return Reply("Hello? Are you still there?")
        return self._understand(heard)

    def _understand(self, heard: str, prefix: str = "") -> Reply:
        self._last_heard = heard
        self._note_facts(heard)
        if lang.has_any(heard, REPEAT_PHRASES) and self.last_statement:
            return Reply(f"Of course. {self.last_statement}")
        wants_human = lang.has_any(heard, INTENT_PHRASES["human"])
        if wants_human:
            return Reply(
                prefix
                + "Of course. I'm transferring you to one of my colleagues now. Please hold.",
                [("transfer_to_human", {"reason": "caller asked for a human agent"})],
            )
        new_intents = self._add_intents(heard)
        stage = self.stage
        if stage == "verify":
            return self._continue_verification(prefix)
        if stage == "choose_card":
            return self._choose_card(heard)
        if stage == "confirm_address":
            return self._confirm_address(heard)
        if stage == "new_address":
            return self._take_new_address(heard)
        if stage == "confirm_new_address":
            return self._confirm_new_address(heard)
        if stage == "house_number":
            return self._take_house_number(heard)
        if stage == "confirm_dispute":
            return self._confirm_dispute(heard)
        if stage == "anything_else":
            follow_up = self._follow_up(heard)
            if follow_up:
                return follow_up
            if new_intents:
                return self._start_intent(prefix)
            if lang.has_any(heard, DONE_PHRASES) or lang.is_no(heard):
                return self._goodbye()
            if lang.has_any(heard, ("thank", "thanks", "great", "perfect", "okay")):
                return Reply("You're welcome. Is there anything else I can help you with?")
        if stage == "closing":
            return Reply("You're welcome. Goodbye.")
        if self.intents:
            return self._start_intent(prefix)
        return self._unclear(prefix)

    def _add_intents(self, heard: str) -> list[str]:
        """Queue what the caller asks for in ``heard``; returns the requests it names."""
        named = [i for i, phrases in INTENT_PHRASES.items() if lang.has_any(heard, phrases)]
        for intent in named:
            if intent not in self.intents:
                self.intents.append(intent)
        if "stolen_card" in self.intents and "lost_card" in self.intents:
            self.intents.remove("lost_card")  # "my stolen card needs replacing" is one request
        return named

    def _note_facts(self, heard: str) -> None:
        self.name = lang.parse_full_name(heard) or self.name
        self.dob = lang.parse_date(heard) or self.dob
        self.last4 = lang.parse_digit_run(heard, 4) or self.last4
        for product in CARD_PRODUCTS:
            if lang.has_any(heard, (product,)) and self.card_product is None:
                self.card_product = product

    def _resume(self) -> str:
        """Pick up where the caller cut us off, as people do: from the start of the sentence
        if it had only begun, else from a few words before the cut; not from the top."""
        planned = self.last_said.split()
        if planned[:1] == ["Sure."]:
            planned = planned[1:]
        kept = self._kept_of_last.split()
        if kept[:1] == ["Sure."]:
            kept = kept[1:]
        if not (0 < len(kept) < len(planned) and planned[: len(kept)] == kept):
            return f"Sure. {self.last_statement}"
        cut = len(kept)

        def last_start(ends: tuple[str, ...]) -> int:
            return max((i + 1 for i, w in enumerate(planned[:cut]) if w.endswith(ends)), default=0)

        sentence_start = last_start((".", "?", "!"))
        if cut - sentence_start <= 6:
            return "Sure. " + " ".join(planned[sentence_start:])
        clause_start = last_start((".", "?", "!", ",", ";", ":"))
        start = clause_start if cut - clause_start <= 6 else cut - 3
        return "Sure. As I was saying, " + " ".join(planned[start:])

    def _unclear(self, prefix: str = "") -> Reply:
        heard = self._last_heard
        if _just_go_on(heard) and self.last_statement:
            # "Go ahead" after cutting in, and nothing else: finish what was interrupted.
            return Reply(self._resume())
        self.unclear_count += 1
        if self.unclear_count >= 4:
            return Reply(
                "I'm sorry, I'm having trouble understanding. Let me transfer you to a colleague who can help.",
                [("transfer_to_human", {"reason": "could not understand the caller"})],
            )
        options = [
            "I'm sorry, I didn't quite catch that. Could you tell me again how I can help?",
            "Sorry, could you say that again?",
        ]
        return Reply(prefix + options[self.unclear_count % 2])

    # ------------------------------------------------------------------ verification

    def _start_intent(self, prefix: str = "") -> Reply:
        intent = self.intents[0]
        if self.faults and self.customer is None:
            planted = self._planted_at_start(intent, prefix)
            if planted is not None:
                return planted
        if self.customer is None:
            self.stage = "verify"
            if self.name and (self.dob or self.last4):
                return self._verify_call(prefix)
            ack = {
                "lost_card": "I'm sorry to hear you lost your card. I can help you with that.",
                "stolen_card": "I'm sorry to hear that. Let's get that card blocked right away.",
                "balance": "I can check that for you.",
                "transactions": "I can go through your recent transactions with you.",
                "dispute": "I can help you dispute that charge.",
                "address_change": "I can update your address.",
            }.get(intent, "I can help with that.")
            return Reply(
                prefix + ack + " First, I need to verify your identity. " + self._ask_identity()
            )
        return self._act(prefix)

    def _planted_at_start(self, intent: str, prefix: str) -> Reply | None:
        """A planted fault at the first request (``early_transfer``, ``skip_verification``)."""
        if "early_transfer" in self.faults and intent != "human":
            self.stage = "closing"
            return Reply(
                prefix + "Let me transfer you to a colleague who can help with that. Please hold.",
                [("transfer_to_human", {"reason": "caller needs help with their account"})],
            )
        if "skip_verification" in self.faults and not self._skipped_verification:
            self._skipped_verification = True  # once; afterwards the careful way
            if intent in ("lost_card", "stolen_card"):
                card = self.last4 or self.card_product or "card"
                reason = "stolen" if intent == "stolen_card" else "lost"
                return Reply(
                    prefix + "I'll block that card for you right away.",
                    [("report_card_lost_or_stolen", {"card_id": card, "reason": reason})],
                )
            if intent in ("balance", "transactions", "dispute"):
                return Reply(
                    prefix + "Let me pull up your account.",
                    [("get_balance", {"customer_id": self.name or "caller"})],
                )
        return None

    def _ask_identity(self) -> str:
        if not self.name and self.dob:
            return "And your full name, please?"
        if not self.name and not self.dob:
            return "Could you please tell me your full name and your date of birth?"
        if not self.name:
            return "Could you please tell me your full name?"
        return "And could you confirm your date of birth, please?"

    def _continue_verification(self, prefix: str = "") -> Reply:
        if self.name and (self.dob or self.last4):
            return self._verify_call(prefix)
        self.unclear_count += 1
        if self.unclear_count >= 5:
            return Reply(
                "I'm sorry, I can't verify your identity over the phone right now. I'll transfer you to a colleague.",
                [("transfer_to_human", {"reason": "identity could not be collected"})],
            )
        if self.name or self.dob:
            return Reply(prefix + "Thank you. " + self._ask_identity())
        heard = self._last_heard
        if len(heard.split()) <= 6 and lang.has_any(heard, ("it's", "its", "name", "this is")):
            # Only a first name: ask precisely for what is missing.
            return Reply(prefix + "Thank you. Could I have your first and last name, please?")
        return Reply(prefix + "I'm sorry, I didn't get that. " + self._ask_identity())

    def _verify_call(self, prefix: str = "") -> Reply:
        arguments: dict[str, Any] = {"full_name": self.name}
        if self.dob:
            arguments["date_of_birth"] = self.dob
        elif self.last4:
            arguments["card_last4"] = self.last4
        return Reply(
            prefix + "Thank you, one moment while I check that.", [("verify_customer", arguments)]
        )

    # ------------------------------------------------------------------ tool results

    def _after_tools(self, results: list[tuple[str, dict[str, Any]]]) -> Reply:
        name, output = results[-1]
        if name == "transfer_to_human":
            self.stage = "closing"
            return Reply("")
        if not output.get("ok", False) and name != "verify_customer":
            error = output.get("error", "an error")
            return Reply(
                f"I'm sorry, our system returned an error: {error}. Is there anything else I can do?"
            )
        handler = getattr(self, f"_on_{name}", None)
        return (
            handler(output)
            if handler
            else Reply("Done. Is there anything else I can help you with?")
        )

    def _on_verify_customer(self, output: dict[str, Any]) -> Reply:
        if output.get("verified"):
            self.customer = output
            self.unclear_count = 0
            first = str(output.get("full_name", self.name or "")).split(" ")[0]
            return self._act(f"Thank you {first}, you're verified. ")
        self.verify_failures += 1
        if not output.get("ok", True) or self.verify_failures >= 3:
            return Reply(
                "I'm sorry, I wasn't able to verify your identity. For your security I'll transfer you to a colleague.",
                [("transfer_to_human", {"reason": "identity verification failed"})],
            )
        self.name = self.dob = self.last4 = None
        self.stage = "verify"
        return Reply(
            "I'm sorry, those details don't match our records. Could you give me your full name and date of birth again?"
        )

    def _act(self, prefix: str = "") -> Reply:
        intent = self.intents[0] if self.intents else None
        customer_id = (self.customer or {}).get("customer_id")
        if intent in ("lost_card", "stolen_card"):
            if self.order:  # asked again: do not block or order twice
                days = _say_days(str(self.order.get("estimated_delivery_days", "")))
                return self._anything_else(
                    prefix
                    + f"Your replacement card is already on its way. It will arrive in {days}."
                )
            return self._choose_card("", prefix)
        if intent == "balance":
            return Reply(
                prefix + "Let me pull up your balances.",
                [("get_balance", {"customer_id": customer_id})],
            )
        if intent in ("transactions", "dispute"):
            return Reply(
                prefix + "Let me look at your recent transactions.",
                [("get_recent_transactions", {"customer_id": customer_id, "limit": 5})],
            )
        if intent == "address_change":
            self.stage = "new_address"
            return Reply(prefix + "What is your new address?")
        self.stage = "anything_else"
        return Reply(prefix + "How else can I help you today?")

    def _cards(self) -> list[dict[str, Any]]:
        return [c for c in (self.customer or {}).get("cards", []) if c.get("status") == "active"]

    def _choose_card(self, heard: str, prefix: str = "") -> Reply:
        cards = self._cards()
        if heard:
            self._note_facts(heard)
        chosen = None
        if self.last4:
            chosen = next((c for c in cards if c.get("last4") == self.last4), None)
        if chosen is None and self.card_product:
            chosen = next(
                (c for c in cards if self.card_product in str(c.get("kind", "")).lower()), None
            )
        if chosen is None and len(cards) == 1:
            chosen = cards[0]
        if chosen is None:
            if not cards:
                self.stage = "anything_else"
                return Reply(
                    prefix
                    + "I don't see any active cards on your profile. Is there anything else I can help with?"
                )
            self.stage = "choose_card"
            # Short and product-first: the caller answers with a word, not four digits.
            kinds = " or the ".join(str(c["kind"]) for c in cards)
            return Reply(prefix + f"Which card is it: the {kinds}?")
        self.card = chosen
        reason = "stolen" if self.intents and self.intents[0] == "stolen_card" else "lost"
        return Reply(
            prefix
            + f"I'm blocking your {chosen['kind']} ending in {lang.say_digits(chosen['last4'])} now.",
            [("report_card_lost_or_stolen", {"card_id": chosen["card_id"], "reason": reason})],
        )

    def _on_report_card_lost_or_stolen(self, output: dict[str, Any]) -> Reply:
        self.stage = "confirm_address"
        address = (self.customer or {}).get("address", "your address on file")
        return Reply(
            "Your card is now blocked, so nobody can use it. "
            f"I can send a replacement card to {address}. Is that the right address?"
        )

    def _confirm_address(self, heard: str) -> Reply:
        if lang.has_any(heard, ("moved", "new address", "different address")) or lang.is_no(heard):
            if _address_from(heard):
                return self._take_new_address(heard)
            self.stage = "new_address"
            return Reply("No problem. What address should we send the new card to?")
        if lang.is_yes(heard):
            if "false_promise" in self.faults:  # planted: the order is said, never made
                self.order = {"estimated_delivery_days": "5-7 business days"}
                return self._anything_else(
                    "Great. Your replacement card has been ordered and will arrive in five to "
                    "seven business days."
                )
            return self._order_replacement()
        if lang.is_no(heard):
            self.stage = "new_address"
            return Reply("No problem. What address should we send the new card to?")
        if _just_go_on(heard):
            return Reply(self._resume())  # cut off before the address: finish saying it
        # The address is read back every time: an unheard "address on file" is no consent.
        address = (self.customer or {}).get("address")
        where = f"{address}, the address on file" if address else "the address on file"
        return Reply(f"Sorry, should I send the replacement card to {where}? Yes or no?")

    def _order_replacement(self, address: str | None = None) -> Reply:
        assert self.card is not None
        arguments: dict[str, Any] = {"card_id": self.card["card_id"]}
        if address:
            arguments["delivery_address"] = address
        return Reply(
            "Great, I'm ordering your replacement card now.",
            [("order_replacement_card", arguments)],
        )

    def _take_new_address(self, heard: str) -> Reply:
        address = _address_from(heard)
        if not address:
            self.stage = "new_address"
            return Reply(
                "Sorry, could you repeat the new address, with the house number and street?"
            )
        if not any(
            w in lang.UNITS or w in lang.TEENS or w in lang.TENS or w.isdigit()
            for w in address.split()
        ):
            self.pending_address = address
            self.stage = "house_number"
            return Reply(f"Thank you. I have {address}. What is the house number?")
        # Read it back before changing anything: addresses are easy to mishear.
        self.pending_address = address
        self.stage = "confirm_new_address"
        return Reply(f"Let me read that back: {address}. Is that right?")

    def _take_house_number(self, heard: str) -> Reply:
        words = lang.normalize(heard).split()
        numbers = [
            w for w in words if w in lang.UNITS or w in lang.TEENS or w in lang.TENS or w.isdigit()
        ]
        if not numbers or not self.pending_address:
            return Reply("Sorry, what is the house number?")
        return self._take_new_address(" ".join(numbers) + " " + self.pending_address)

    def _confirm_new_address(self, heard: str) -> Reply:
        if lang.is_yes(heard) and self.pending_address:
            customer_id = (self.customer or {}).get("customer_id")
            address, self.pending_address = self.pending_address, None
            return Reply(
                f"Thank you. I'm updating your address to {address}.",
                [("update_address", {"customer_id": customer_id, "new_address": address})],
            )
        return self._take_new_address(heard)

    def _on_update_address(self, output: dict[str, Any]) -> Reply:
        if "address_change" in self.intents[1:]:  # done as part of the replacement
            self.intents.remove("address_change")
        if self.customer is not None:
            self.customer["address"] = output.get("new_address", self.customer.get("address"))
        if self.card is not None and self.order is None:
            return self._order_replacement()
        return self._anything_else("Your address has been updated.")

    def _on_order_replacement_card(self, output: dict[str, Any]) -> Reply:
        self.order = output
        days = str(output.get("estimated_delivery_days", "five to seven business days"))
        return self._anything_else(
            f"Your replacement card has been ordered and will arrive in {_say_days(days)} "
            f"at {output.get('delivery_address', 'your address')}."
        )

    def _on_get_balance(self, output: dict[str, Any]) -> Reply:
        accounts = output.get("accounts") or ([output] if "balance" in output else [])
        if "wrong_amount" in self.faults and accounts:  # planted: the first balance misread
            first = dict(accounts[0])
            first["balance"] = float(first.get("balance", 0)) + WRONG_AMOUNT_OFFSET
            accounts = [first, *accounts[1:]]
        parts = [
            f"your {a.get('kind', 'account')} account has {lang.say_money(float(a.get('balance', 0)))}"
            for a in accounts
        ]
        return self._anything_else("Right now " + " and ".join(parts) + ".")

    def _on_get_recent_transactions(self, output: dict[str, Any]) -> Reply:
        self.transactions = output.get("transactions", [])
        if not self.transactions:
            return self._anything_else("I don't see any recent transactions.")
        if self.intents and self.intents[0] == "dispute":
            debits = [t for t in self.transactions if float(t.get("amount", 0)) < 0]
            suspicious = max(debits, key=lambda t: abs(float(t["amount"])), default=None)
            if suspicious:
                self.dispute_candidate = suspicious
                self.stage = "confirm_dispute"
                amount = abs(float(suspicious["amount"]))
                if "wrong_amount" in self.faults:  # planted: the charge misread
                    amount += WRONG_AMOUNT_OFFSET
                return Reply(
                    f"I see a charge of {lang.say_money(amount)} at {suspicious.get('merchant')}. "
                    "Is that the charge you want to dispute?"
                )
        lines = [
            f"{lang.say_money(float(t['amount']))} at {t.get('merchant')}"
            for t in self.transactions[:3]
        ]
        return self._anything_else(
            "Your most recent transactions are " + ", then ".join(lines) + "."
        )

    def _confirm_dispute(self, heard: str) -> Reply:
        if lang.is_yes(heard) and self.dispute_candidate:
            return Reply(
                "I'll open a dispute for that charge now.",
                [
                    (
                        "dispute_transaction",
                        {
                            "transaction_id": self.dispute_candidate["transaction_id"],
                            "reason": "caller does not recognize the charge",
                        },
                    )
                ],
            )
        self.stage = "anything_else"
        return Reply("Okay, I won't dispute it. Is there anything else I can help with?")

    def _on_dispute_transaction(self, output: dict[str, Any]) -> Reply:
        return self._anything_else(
            "The dispute is open. You'll get a provisional credit while we investigate."
        )

    def _anything_else(self, text: str) -> Reply:
        if self.intents:
            self.intents.pop(0)
        if self.intents:
            follow = self._act()
            return Reply(f"{text} {follow.text}", follow.tool_calls)
        self.stage = "anything_else"
        return Reply(f"{text} Is there anything else I can help you with?")

    # ------------------------------------------------------------------ follow-ups and goodbye

    def _follow_up(self, heard: str) -> Reply | None:
        if lang.has_any(
            heard,
            ("how long", "when will", "arrive", "delivery", "timeline", "how soon", "deliver"),
        ):
            if self.order:
                days = _say_days(str(self.order.get("estimated_delivery_days", "")))
                return Reply(f"The new card should arrive in {days}. Anything else?")
            return Reply(
                "Once the card is ordered it usually arrives in five to seven business days. Anything else?"
            )
        if lang.has_any(heard, ("charge", "charges", "unauthorized", "fraud", "transactions")):
            customer_id = (self.customer or {}).get("customer_id")
            if customer_id:
                self.intents.insert(0, "transactions")
                return Reply(
                    "Let me check your recent transactions.",
                    [("get_recent_transactions", {"customer_id": customer_id, "limit": 5})],
                )
        if lang.has_any(heard, ("secure", "security", "safe", "protected", "someone use")):
            return Reply(
                "Your old card is permanently blocked and the new card has a new number, so your account is protected. Anything else?"
            )
        return None

    def _goodbye(self) -> Reply:
        self.stage = "closing"
        return Reply(f"Thank you for calling {self.bank}. Have a great day. Goodbye.")


def _say_days(days: str) -> str:
    """'5-7 business days' -> 'five to seven business days'."""
    words = []
    for token in days.replace("-", " to ").split():
        words.append(lang.number_words(int(token)) if token.isdigit() else token)
    return " ".join(words) or "a few business days"


_ADDRESS_FILLER = ("it's", "its", "it is", "the new address is", "my new address is", "new address is",
                   "please send it to", "send it to", "to", "my address is", "address is", "yes", "sure")  # fmt: skip


STREET_WORDS = ("street", "road", "avenue", "lane", "drive", "way", "court", "place", "boulevard")


def _address_from(heard: str) -> str | None:
    """A spoken address, trimmed of lead-in words; needs a house number or a street word.

    Whatever follows the last "address is" / "send it to" is the address, as a person taking
    it down over the phone would write it.
    """
    text = lang.normalize(heard)
    for cue in ("address is", "send it to", "moved to", "live at", "it to"):
        if f" {cue} " in f" {text} ":
            text = text.split(cue)[-1].strip()
            break
    for filler in sorted(_ADDRESS_FILLER, key=len, reverse=True):
        if text.startswith(filler + " "):
            text = text[len(filler) + 1 :]
    words = text.split()

    def is_number(word: str) -> bool:
        return word in lang.UNITS or word.isdigit() or word in lang.TEENS or word in lang.TENS

    # Start at the house number, or else at the street's name (the word before "road" etc.).
    start = next((i for i, w in enumerate(words) if is_number(w)), None)
    if start is None:
        street = next((i for i, w in enumerate(words) if w in STREET_WORDS), None)
        start = max(0, street - 1) if street is not None else None
    if start is None:
        return None
    words = words[start:]
    return " ".join(words) if len(words) >= 3 else None


def _just_go_on(heard: str) -> bool:
    """A short "go on" / "get on with it", and nothing else (a caller who cut in)."""
    return lang.has_any(heard, GO_ON_PHRASES) and len(heard.split()) <= 6
