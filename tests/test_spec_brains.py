"""The spec-driven scripted agent (local-agent) and the domain caller, fed BrainInput directly
on a small appointment-line spec defined here (canned tool results; no server, no engines)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from dualagent.agent_spec import AgentSpec, agent_from_dict
from dualagent.agents import agent_instructions
from dualagent.call.tools import CALLER_TOOLS
from dualagent.realtime.local.brains import arguments as args_
from dualagent.realtime.local.brains.agent import SpecAgentBrain
from dualagent.realtime.local.brains.base import Brain, BrainInput, Reply
from dualagent.realtime.local.brains.caller import CallerBrain
from dualagent.realtime.local.brains.domain_caller import DomainCallerBrain
from dualagent.realtime.local.brains.registry import brain_for
from dualagent.realtime.local.conversation import ConversationEntry
from dualagent.realtime.local.profile import parse_profile

NAME = {"type": "string", "description": "The patient's full name"}
DOB = {"type": "string", "format": "date", "description": "Date of birth as YYYY-MM-DD"}
SLOTS = [
    {"slot_id": "S-1", "date": "2025-06-03", "time": "09:30", "doctor": "Dr Patel"},
    {"slot_id": "S-2", "date": "2025-06-03", "time": "14:00", "doctor": "Dr Chen"},
]
SPEC: dict[str, Any] = {
    "name": "test_clinic",
    "organisation": "Riverside Clinic",
    "agent_name": "Sam",
    "instructions": "You answer the phone at Riverside Clinic.",
    "greeting": "Riverside Clinic, this is Sam. How can I help?",
    "profile": {
        "intents": {"cancel_appointment": ["can't come"]},
        "ask": {"reason": "What is the visit for?"},
    },
    "tools": [
        {
            "name": "verify_patient",
            "description": "Verify the patient by full name and date of birth.",
            "parameters": {
                "type": "object",
                "properties": {"patient_name": NAME, "date_of_birth": DOB},
                "required": ["patient_name", "date_of_birth"],
            },
            "responses": [
                {
                    "when": {"patient_name": "Garcia", "date_of_birth": "1985-07-22"},
                    "result": {"ok": True, "verified": True, "patient_id": "P-1"},
                },
                {"result": {"ok": False, "error": "no patient matches those details"}},
            ],
        },
        {
            "name": "find_slots",
            "description": "Find open appointment slots on a day of the week.",
            "parameters": {
                "type": "object",
                "properties": {
                    "day": {
                        "type": "string",
                        "enum": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                        "description": "Preferred day of the week",
                    }
                },
                "required": ["day"],
            },
            "responses": [
                {"when": {"day": "tuesday"}, "result": {"ok": True, "slots": SLOTS}},
                {"result": {"ok": True, "slots": []}},
            ],
        },
        {
            "name": "book_appointment",
            "description": "Book a slot for a verified patient.",
            "say": "You're booked with {doctor} on {date} at {time}.",
            "parameters": {
                "type": "object",
                "properties": {
                    "patient_id": {
                        "type": "string",
                        "description": "Patient id from verify_patient",
                    },
                    "slot_id": {"type": "string", "description": "Slot id from find_slots"},
                    "reason": {"type": "string", "description": "Reason for the visit"},
                },
                "required": ["patient_id", "slot_id", "reason"],
            },
            "responses": [
                {
                    "when": {"slot_id": slot["slot_id"]},
                    "result": {"ok": True, "appointment_id": f"A-{i}", **slot},
                }
                for i, slot in enumerate(SLOTS)
            ],
        },
        {
            "name": "cancel_appointment",
            "description": "Cancel the patient's appointment on a date.",
            "parameters": {
                "type": "object",
                "properties": {
                    "patient_id": {
                        "type": "string",
                        "description": "Patient id from verify_patient",
                    },
                    "date": {
                        "type": "string",
                        "format": "date",
                        "description": "The date of the appointment",
                    },
                },
                "required": ["patient_id", "date"],
            },
            "responses": [{"result": {"ok": True, "cancelled": True}}],
        },
        {
            "name": "get_opening_hours",
            "description": "The clinic's opening hours.",
            "responses": [{"result": {"ok": True, "hours": "eight to six, Monday to Friday"}}],
        },
        {
            "name": "transfer_to_human",
            "description": "Transfer the caller to the front desk.",
            "ends_call": "transferred",
            "parameters": {
                "type": "object",
                "properties": {"reason": {"type": "string"}},
                "required": ["reason"],
            },
            "responses": [{"result": {"ok": True}}],
        },
        {
            "name": "end_call",
            "description": "End the call.",
            "ends_call": "hang_up",
            "parameters": {
                "type": "object",
                "properties": {"reason": {"type": "string"}},
                "required": ["reason"],
            },
            "responses": [{"result": {"ok": True}}],
        },
    ],
}
CALLER: dict[str, Any] = {
    "role": "caller",
    "seed": 0,
    "domain": "test_clinic",
    "organisation": "Riverside Clinic",
    "persona": {"type": "typical", "patience_level": 8, "provides_clear_info": 1.0},
    "goal": {"primary_goal": "Book a check-up appointment", "secondary_goals": []},
    "situation": "You are due for your yearly check-up.",
    "facts": {
        "patient_name": "Maria Garcia",
        "date_of_birth": "1985-07-22",
        "day": "tuesday",
        "reason": "a yearly check up",
    },
}


def spec(**changes: Any) -> AgentSpec:
    data = copy.deepcopy(SPEC)
    data.update(changes)
    return agent_from_dict(data)


def caller_profile(**changes: Any) -> dict[str, Any]:
    profile = copy.deepcopy(CALLER)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(profile.get(key), dict):
            profile[key].update(value)
        else:
            profile[key] = value
    return profile


class Agent:
    """The agent brain as its session runs it: profile from the spec, tools declared, results
    from the canned responses."""

    def __init__(self, agent_spec: AgentSpec | None = None, seed: int = 0) -> None:
        self.spec = agent_spec or spec()
        profile = parse_profile(agent_instructions(self.spec, seed))
        self.brain = brain_for(self.spec.local_model)(profile)
        self.conversation: list[ConversationEntry] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _add(self, role: str, **fields: Any) -> None:
        self.conversation.append(
            ConversationEntry(f"item_{len(self.conversation)}", role, **fields)
        )

    def respond(self, heard: str | None = None) -> str:
        """What the agent says after hearing ``heard`` (tools it calls run at once)."""
        if heard:
            self._add("user", text=heard)
        said = []
        for _ in range(5):  # a reply, and the replies to its tool results
            reply = self.brain.respond(self._input())
            if reply.text:
                said.append(reply.text)
                self._add("assistant", text=reply.text)
            if not reply.tool_calls:
                break
            for name, arguments in reply.tool_calls:
                self.calls.append((name, arguments))
                call_id = f"call_{len(self.calls)}"
                self._add("assistant", call_id=call_id, name=name, arguments=json.dumps(arguments))
                self._add("tool", call_id=call_id, output=json.dumps(self.result(name, arguments)))
        return " ".join(said)

    def _input(self) -> BrainInput:
        return BrainInput(
            instructions="",
            profile={},
            tools=[t.name for t in self.spec.tools],
            conversation=list(self.conversation),
            tool_specs=self.spec.session_tools(),
        )

    def result(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = self.spec.tool(name)
        assert tool is not None and tool.responses is not None
        return next(r.result for r in tool.responses if r.matches(arguments))

    def called(self, name: str) -> dict[str, Any] | None:
        return next((a for n, a in reversed(self.calls) if n == name), None)


def hear(brain: Brain, conversation: list[ConversationEntry], text: str, **flags: Any) -> Reply:
    conversation.append(ConversationEntry(f"item_{len(conversation)}", "user", text=text))
    reply = brain.respond(
        BrainInput("", {}, ["end_call"], list(conversation), tool_specs=CALLER_TOOLS, **flags)
    )
    if reply.text:
        conversation.append(
            ConversationEntry(f"item_{len(conversation)}", "assistant", text=reply.text)
        )
    return reply


def converse(
    agent: Agent, caller: dict[str, Any], *, max_turns: int = 40
) -> tuple[list[tuple[str, str]], str | None]:
    """A whole call between the two brains in text; (transcript, who ended it with what)."""
    brain = brain_for("local-caller")(caller)
    transcript: list[tuple[str, str]] = []
    mine: list[ConversationEntry] = []
    said = agent.respond()
    for _ in range(max_turns):
        transcript.append(("agent", said))
        ended = next((n for n, _ in agent.calls if agent.spec.tool(n).ends_call), None)  # type: ignore[union-attr]
        if ended:
            return transcript, f"agent:{ended}"
        reply = hear(brain, mine, said)
        transcript.append(("caller", reply.text))
        if reply.tool_calls:
            return transcript, f"caller:{reply.tool_calls[0][1]['reason']}"
        said = agent.respond(reply.text)
    return transcript, None


# ------------------------------------------------------------------------------ the agent


def test_agent_greets_with_the_spec_greeting_and_is_the_local_agent_brain() -> None:
    agent = Agent()
    assert isinstance(agent.brain, SpecAgentBrain)
    assert agent.respond() == "Riverside Clinic, this is Sam. How can I help?"


def test_agent_collects_arguments_chains_tools_reads_back_and_books() -> None:
    agent = Agent()
    agent.respond()
    said = agent.respond("hi i'd like to book an appointment")
    assert said.endswith("Could you tell me your full name and your date of birth?")
    said = agent.respond(
        "my name is maria garcia and my date of birth is july twenty second nineteen eighty five"
    )
    # verified first (patient_id comes from its result), then the day find_slots needs
    assert agent.called("verify_patient") == {
        "patient_name": "Maria Garcia",
        "date_of_birth": "1985-07-22",
    }
    assert said.endswith("Could you tell me your preferred day of the week?")
    said = agent.respond("tuesday please")
    assert agent.called("find_slots") == {"day": "tuesday"}
    assert "nine thirty in the morning, Doctor Patel, or" in said
    assert said.endswith("Which would you like?")
    said = agent.respond("the second one")
    assert said == "Great. What is the visit for?"  # the profile's wording
    said = agent.respond("it's for my knee")
    assert said.startswith("Thank you. Let me read that back. I'll book the appointment:")
    assert "two in the afternoon, Doctor Chen" in said and said.endswith(
        "reason my knee. Is that right?"
    )
    assert agent.called("book_appointment") is None  # nothing changes before a yes
    said = agent.respond("yes that's right")
    assert agent.called("book_appointment") == {
        "patient_id": "P-1",
        "slot_id": "S-2",
        "reason": "my knee",
    }
    assert (
        "You're booked with Doctor Chen on June third twenty twenty five at two in the afternoon."
        in said
    )
    assert said.endswith("Is there anything else I can help you with?")
    said = agent.respond("no that's all thanks")
    assert said == "Thank you for calling Riverside Clinic. Have a great day. Goodbye."
    assert agent.calls[-1] == ("end_call", {"reason": "the caller is done"})


def test_agent_takes_values_said_before_they_are_asked() -> None:
    agent = Agent()
    agent.respond()
    said = agent.respond(
        "hello this is maria garcia born july twenty second nineteen eighty five "
        "i need an appointment on tuesday"
    )
    assert agent.called("verify_patient") == {
        "patient_name": "Maria Garcia",
        "date_of_birth": "1985-07-22",
    }
    assert agent.called("find_slots") == {"day": "tuesday"}
    assert said.endswith("Which would you like?")


def test_agent_chooses_the_tool_from_profile_phrases_and_its_name() -> None:
    agent = Agent()
    agent.respond()
    agent.respond("i can't come on the third")
    assert agent.brain.goal == "cancel_appointment"  # type: ignore[attr-defined]
    agent = Agent()
    agent.respond()
    said = agent.respond("what are your opening hours")
    assert agent.calls == [("get_opening_hours", {})]  # nothing to ask, nothing changes
    assert "Here is what I found: hours eight to six, Monday to Friday." in said


def test_agent_parses_a_date_without_its_year_and_confirms_a_cancellation() -> None:
    agent = Agent(spec(profile={"today": "2025-05-20"}))
    agent.respond()
    agent.respond("i need to cancel my appointment")
    agent.respond("maria garcia july twenty second nineteen eighty five")
    said = agent.respond("it's on june third")
    assert said.endswith(
        "I'll cancel the appointment: date June third twenty twenty five. Is that right?"
    )
    said = agent.respond("yes")
    assert agent.called("cancel_appointment") == {"patient_id": "P-1", "date": "2025-06-03"}
    assert said.startswith("Thank you. One moment. Done. I've cancelled the appointment.")


def test_agent_asks_again_when_an_answer_is_unclear_or_only_a_first_name() -> None:
    agent = Agent()
    agent.respond()
    agent.respond("i want to book an appointment")
    assert agent.respond("it's maria") == "Thank you. Could you tell me your full name, please?"
    said = agent.respond("my name is maria garcia")
    assert said == "Thank you. Could you tell me your date of birth?"
    said = agent.respond("um what")
    assert said == "I'm sorry, I didn't get that. Could you tell me your date of birth?"
    agent.respond("july twenty second nineteen eighty five")
    said = agent.respond("hmm")
    assert said.endswith("You can say monday, tuesday, wednesday, thursday or friday.")


def test_agent_repeats_itself_and_transfers_when_asked_for_a_person() -> None:
    agent = Agent()
    greeting = agent.respond()
    assert agent.respond("sorry could you repeat that") == f"Of course. {greeting}"
    said = agent.respond("i want to talk to a real person")
    assert said.startswith("Of course. I'm transferring you")
    assert agent.calls == [("transfer_to_human", {"reason": "caller asked for a human"})]


def test_agent_apologises_for_a_failed_tool_asks_again_then_hands_over() -> None:
    agent = Agent()
    agent.respond()
    agent.respond("book an appointment please")
    said = agent.respond(
        "my name is maria lopez and my date of birth is july twenty second nineteen eighty five"
    )
    assert said.endswith(
        "I'm sorry, no patient matches those details. Let's try that again. "
        "Could you tell me your full name and your date of birth?"
    )
    said = agent.respond(
        "my name is maria lopez and my date of birth is july twenty second nineteen eighty five"
    )
    assert "I'm sorry, no patient matches those details. Let me transfer you" in said
    assert agent.calls[-1][0] == "transfer_to_human"


def test_agent_with_nothing_to_offer_says_so_and_moves_on() -> None:
    agent = Agent()
    agent.respond()
    agent.respond("book an appointment please")
    agent.respond(
        "my name is maria garcia and my date of birth is july twenty second nineteen eighty five"
    )
    said = agent.respond("friday")
    assert said == (
        "Thank you. One moment. I'm sorry, I couldn't find anything suitable. "
        "Is there anything else I can help you with?"
    )
    assert agent.called("book_appointment") is None


def test_agent_looks_again_when_the_chosen_option_is_gone() -> None:
    data = copy.deepcopy(SPEC)
    data["tools"][2]["responses"].insert(
        0,
        {"when": {"slot_id": "S-1"}, "result": {"ok": False, "error": "that time was just taken"}},
    )
    agent = Agent(agent_from_dict(data))
    agent.respond()
    agent.respond("book an appointment please")
    agent.respond(
        "my name is maria garcia and my date of birth is july twenty second nineteen eighty five"
    )
    agent.respond("tuesday")
    agent.respond("the first one")
    agent.respond("a check up")
    said = agent.respond("yes")
    assert "I'm sorry, that time was just taken. Let me look again. One moment." in said
    assert [n for n, _ in agent.calls].count("find_slots") == 2
    assert said.endswith("Which would you like?")
    agent.respond("the second one")
    said = agent.respond("yes")
    assert agent.called("book_appointment") == {
        "patient_id": "P-1",
        "slot_id": "S-2",
        "reason": "check up",
    }


def test_agent_rereads_after_a_correction() -> None:
    agent = Agent()
    agent.respond()
    agent.respond("book an appointment please")
    agent.respond(
        "my name is maria garcia and my date of birth is july twenty second nineteen eighty five"
    )
    agent.respond("tuesday")
    agent.respond("the first one")
    agent.respond("free yearly checkup")
    said = agent.respond("no the reason is a yearly check up")
    assert said.startswith("Thank you for correcting me. Let me read that back.")
    assert said.endswith("reason yearly check up. Is that right?")
    agent.respond("yes")
    assert agent.called("book_appointment") == {
        "patient_id": "P-1",
        "slot_id": "S-1",
        "reason": "yearly check up",
    }


def test_agent_reads_a_result_without_a_template_generically() -> None:
    data = copy.deepcopy(SPEC)
    data["tools"][2].pop("say")
    agent = Agent(agent_from_dict(data))
    agent.respond()
    agent.respond("i'd like to book an appointment")
    agent.respond(
        "my name is maria garcia and my date of birth is july twenty second nineteen eighty five"
    )
    agent.respond("tuesday")
    agent.respond("the first one")
    agent.respond("a check up")
    said = agent.respond("yes")
    assert said.startswith(
        "Thank you. One moment. Done. I've booked the appointment: date June third twenty "
        "twenty five, time nine thirty in the morning, doctor Doctor Patel."
    )


# ------------------------------------------------------------------------------ the caller


def test_the_local_caller_is_the_domain_caller_for_a_domain_and_the_bank_caller_otherwise() -> None:
    assert isinstance(brain_for("local-caller")(caller_profile()), DomainCallerBrain)
    bank = {
        "role": "caller",
        "seed": 0,
        "intent": "lost_card",
        "persona": {},
        "goal": {},
        "facts": {},
    }
    assert isinstance(brain_for("local-caller")(bank), CallerBrain)


def test_caller_states_its_goal_and_answers_from_its_facts_in_words() -> None:
    brain, conversation = DomainCallerBrain(caller_profile()), []
    assert hear(brain, conversation, "riverside clinic how can i help").text == (
        "Hi. I'd like to book a check-up appointment."
    )
    assert hear(
        brain, conversation, "could you tell me your full name and your date of birth"
    ).text == (
        "My name is Maria Garcia, and my date of birth is July twenty second nineteen eighty five."
    )
    assert (
        hear(brain, conversation, "which day of the week would you like").text
        == "My day is tuesday."
    )
    assert hear(brain, conversation, "what is the reason for your visit").text == (
        "It's for a yearly check up."
    )


def test_caller_confirms_a_right_read_back_and_corrects_a_wrong_one() -> None:
    brain, conversation = DomainCallerBrain(caller_profile()), []
    hear(brain, conversation, "hello how can i help")
    right = (
        "let me read that back date of birth july twenty second nineteen eighty five is that right"
    )
    assert hear(brain, conversation, right).text == "Yes, that's right."
    wrong = (
        "let me read that back date of birth july twenty third nineteen eighty five is that right"
    )
    assert hear(brain, conversation, wrong).text == (
        "No, my date of birth is July twenty second nineteen eighty five."
    )
    name = "i'll book the appointment for maria gomez is that correct"
    assert hear(brain, conversation, name).text == "No, my name is Maria Garcia."
    reason = "i'll book it reason yearly checkup is that right"
    assert hear(brain, conversation, reason).text == "Yes, that's right."  # close enough
    reason = "i'll book it reason a broken arm is that right"
    assert hear(brain, conversation, reason).text == "No, the reason is a yearly check up."


def test_caller_picks_the_option_that_fits_its_facts() -> None:
    brain, conversation = DomainCallerBrain(caller_profile()), []
    hear(brain, conversation, "hello how can i help")
    offer = "i have monday at nine or tuesday at two in the afternoon which would you like"
    assert hear(brain, conversation, offer).text == "The second one, please."
    assert hear(brain, conversation, "i have tuesday at ten would that work for you").text == (
        "Yes, that works."
    )


def test_caller_raises_its_other_goals_then_hangs_up_on_goodbye() -> None:
    profile = caller_profile(goal={"secondary_goals": ["Ask about parking"]})
    brain, conversation = DomainCallerBrain(profile), []
    hear(brain, conversation, "hello how can i help")
    done = "you're booked with doctor patel is there anything else i can help you with"
    assert hear(brain, conversation, done).text == (
        "Yes, one more thing. I'd also like to ask about parking."
    )
    assert hear(brain, conversation, "sorry is there anything else").text == (
        "No, that's all. Thank you for your help."
    )
    reply = hear(brain, conversation, "thank you for calling goodbye")
    assert reply.text == "Thank you, goodbye."
    assert reply.tool_calls == [("end_call", {"reason": "completed"})]


def test_caller_without_what_it_came_for_says_so_when_it_hangs_up() -> None:
    brain, conversation = DomainCallerBrain(caller_profile()), []
    hear(brain, conversation, "hello how can i help")
    sorry = "i'm sorry i couldn't find anything suitable is there anything else i can help you with"
    assert hear(brain, conversation, sorry).text == "No, that's all then. Thanks anyway."
    reply = hear(brain, conversation, "thank you for calling goodbye")
    assert reply.tool_calls == [("end_call", {"reason": "not_resolved"})]


def test_an_impatient_caller_gives_up_when_it_is_not_understood() -> None:
    profile = caller_profile(persona={"type": "hurried", "patience_level": 2})
    brain, conversation = DomainCallerBrain(profile), []
    hear(brain, conversation, "hello how can i help")
    first = hear(brain, conversation, "blah blah something unrelated")
    assert first.text == "I still need to book a check-up appointment."
    last = hear(brain, conversation, "blah blah something unrelated")
    assert last.tool_calls == [("end_call", {"reason": "gave_up"})]
    assert last.text == "Forget it, I'll call back later. Goodbye."


def test_caller_cutting_in_leads_in_and_moves_things_along() -> None:
    profile = caller_profile(persona={"type": "frustrated", "patience_level": 3})
    brain, conversation = DomainCallerBrain(profile), []
    hear(brain, conversation, "hello how can i help")
    reply = hear(brain, conversation, "so what i'm going to do now is", barge_in=True)
    assert reply.text == "Look, I'd like to book a check-up appointment."
    assert brain.patience == 3  # cutting in is its own choice: no patience lost
    hear(brain, conversation, "could you tell me your full name")
    # Once it is being helped, cutting in hurries the agent on; it does not start again.
    assert hear(brain, conversation, "thank you i have found your", barge_in=True).text == (
        "Look, just get on with it."
    )
    # Cutting into the goodbye is a goodbye, without a "sorry".
    reply = hear(brain, conversation, "have a great day goodbye", barge_in=True)
    assert reply.text == "Right. Bye." and reply.tool_calls


# ------------------------------------------------------------------------------ whole calls


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "persona",
    [
        {"type": "typical", "patience_level": 8, "provides_clear_info": 0.9},
        {"type": "frustrated", "patience_level": 3, "provides_clear_info": 0.5},
        {"type": "elderly", "patience_level": 9, "provides_clear_info": 0.6},
        {"type": "hurried", "patience_level": 4, "provides_clear_info": 0.85},
    ],
    ids=lambda p: p["type"],
)
def test_every_persona_books_its_appointment(persona: dict[str, Any], seed: int) -> None:
    agent = Agent(seed=seed)
    transcript, ended = converse(agent, caller_profile(persona=persona, seed=seed))
    assert agent.called("book_appointment") == {
        "patient_id": "P-1",
        "slot_id": "S-1",
        "reason": "yearly check up",
    }, transcript
    assert ended == "agent:end_call"
    # The same seed gives the same call.
    again = Agent(seed=seed)
    assert converse(again, caller_profile(persona=persona, seed=seed)) == (transcript, ended)


def test_a_caller_the_clinic_cannot_verify_is_handed_over() -> None:
    agent = Agent()
    transcript, ended = converse(agent, caller_profile(facts={"date_of_birth": "1985-07-23"}))
    assert [n for n, _ in agent.calls].count("verify_patient") == 2
    assert ended == "agent:transfer_to_human", transcript
    assert agent.called("book_appointment") is None


def test_nothing_free_ends_politely_without_a_booking() -> None:
    agent = Agent()
    transcript, ended = converse(agent, caller_profile(facts={"day": "friday"}))
    assert agent.called("book_appointment") is None
    assert ("caller", "No, that's all then. Thanks anyway.") in transcript
    assert ended == "agent:end_call"


# ------------------------------------------------------------------------------ language


@pytest.mark.parametrize(
    ("text", "hhmm"),
    [
        ("nine thirty in the morning", "09:30"),
        ("two in the afternoon", "14:00"),
        ("at ten o'clock", "10:00"),
        ("two thirty p m", "14:30"),
        ("twelve noon", "12:00"),
        ("i need two things", None),
    ],
)
def test_times_are_heard_in_words(text: str, hhmm: str | None) -> None:
    assert args_.parse_time(text) == hhmm


def test_values_are_said_the_way_they_are_heard_back() -> None:
    for hhmm in ("09:30", "14:00", "12:00", "18:05"):
        assert args_.parse_time(args_.say_time(hhmm)) == hhmm
    assert args_.say_text("Dr Patel on 2025-06-03 at 09:30, room 12") == (
        "Doctor Patel on June third twenty twenty five at nine thirty in the morning, room twelve"
    )
    assert args_.render("{slots[1].doctor} at {slots[1].time}", {"slots": SLOTS}) == (
        "Doctor Chen at two in the afternoon"
    )
    assert args_.render("{missing}", {}) is None


@pytest.mark.parametrize(
    ("name", "schema", "heard", "value"),
    [
        ("date_of_birth", DOB, "it's july twenty second nineteen eighty five", "1985-07-22"),
        ("patient_name", NAME, "maria garcia", "Maria Garcia"),
        ("party_size", {"type": "integer", "minimum": 1}, "there will be four of us", 4),
        (
            "phone",
            {"type": "string", "pattern": r"^\d{10}$"},
            "five five five one two three four five six seven",
            "5551234567",
        ),
        ("day", {"enum": ["monday", "tuesday"]}, "tuesdays are best", "tuesday"),
        ("urgent", {"type": "boolean"}, "yes it is", True),
        ("reason", {"type": "string"}, "well it's for my knee", "my knee"),
        ("party_size", {"type": "integer", "maximum": 8}, "twenty", None),  # against its schema
    ],
)
def test_arguments_are_parsed_by_their_schema(
    name: str, schema: dict[str, Any], heard: str, value: Any
) -> None:
    assert args_.parse_argument(name, schema, heard, asked=True) == value


def test_questions_come_from_descriptions() -> None:
    assert args_.ask_text("patient_name", NAME) == "Could you tell me your full name?"
    assert args_.ask_text("date_of_birth", DOB) == "Could you tell me your date of birth?"
    assert args_.ask_text(
        "slot", {"enum": ["morning", "afternoon"], "description": "Time of day"}
    ) == ("Could you tell me your time of day: morning or afternoon?")
