"""The scripted brains, fed conversations directly (no server, no engines)."""

import inspect
import json

import pytest

from dualagent.realtime.local.brains import registry
from dualagent.realtime.local.brains.base import Brain, BrainInput, Reply
from dualagent.realtime.local.brains.caller import CallerBrain
from dualagent.realtime.local.brains.cs import CustomerServiceBrain
from dualagent.realtime.local.brains.registry import (
    UnknownBrainError,
    brain_for,
    brain_names,
    register_brain,
)
from dualagent.realtime.local.session import ConversationEntry

GREETING = "Thank you for calling First Bank, this is Alex. How can I help you today?"


def ask(brain: CustomerServiceBrain, conversation: list[ConversationEntry]) -> str:
    given = BrainInput(instructions="", profile={}, tools=[], conversation=conversation)
    return brain.respond(given).text


def greeted_then(kept: str, caller_says: str) -> str:
    """The agent greets, the caller cuts in after ``kept`` was said and says ``caller_says``."""
    brain = CustomerServiceBrain({})
    assert ask(brain, []) == GREETING
    conversation = [
        ConversationEntry("item_1", "assistant", text=kept),
        ConversationEntry("item_2", "user", text=caller_says),
    ]
    return ask(brain, conversation)


def test_agent_cut_off_picks_up_near_where_it_stopped() -> None:
    # Cut in the first clause of a sentence: start that sentence again.
    assert greeted_then("Thank you for", "go on") == "Sure. " + GREETING
    # Cut late in a long sentence: from the clause it was in.
    assert (
        greeted_then("Thank you for calling First Bank, this is", "go ahead")
        == "Sure. As I was saying, this is Alex. How can I help you today?"
    )
    # Cut early in the second sentence: that sentence only.
    assert (
        greeted_then("Thank you for calling First Bank, this is Alex. How can", "get on with it")
        == "Sure. How can I help you today?"
    )


def test_agent_not_cut_off_repeats_its_last_statement() -> None:
    assert greeted_then(GREETING, "go on") == "Sure. " + GREETING


def frustrated_caller() -> CallerBrain:
    brain = CallerBrain(
        {
            "persona": {"type": "frustrated", "patience_level": 3},
            "goal": {"secondary_goals": ["Ensure no unauthorized charges"]},
            "intent": "lost_card",
            "facts": {"full_name": "Nancy Wilson", "date_of_birth": "1958-03-14"},
        }
    )
    brain.opened = brain.gave_identity = True  # past the opening and the identity check
    return brain


def caller_hears(brain: CallerBrain, heard: str, *, cutting_in: bool) -> str:
    entry = ConversationEntry(f"item_{len(heard)}", "user", text=heard)
    given = BrainInput(
        instructions="",
        profile={},
        tools=[],
        conversation=[entry],
        barge_in=cutting_in,
    )
    return brain.respond(given).text


def test_caller_cutting_in_after_the_delivery_time_moves_on_to_its_next_topic() -> None:
    # Recognition got "ordered" wrong, but "five to seven business" is enough.
    heard = "your replacement court has been portable right and five to seven business"
    said = caller_hears(frustrated_caller(), heard, cutting_in=True)
    assert said == "Look, can you check that there are no charges I didn't make?"


def test_caller_cutting_in_with_nothing_to_answer_asks_to_get_on() -> None:
    said = caller_hears(frustrated_caller(), "your court is now blocked so", cutting_in=True)
    assert said == "Look, just get on with it."


def test_caller_cuts_in_on_the_structured_flag_not_on_prose_in_the_instructions() -> None:
    heard = "your court is now blocked so"
    prose = "Right now you are cutting in while the agent is still talking."
    entry = ConversationEntry("item_1", "user", text=heard)
    given = BrainInput("", {}, [], [entry], response_instructions=prose)
    assert frustrated_caller().respond(given).text != "Look, just get on with it."
    assert caller_hears(frustrated_caller(), heard, cutting_in=True) == "Look, just get on with it."


# ------------------------------------------------------------------------------ registry


@pytest.mark.parametrize(
    ("model", "kind"), [("local-caller", CallerBrain), ("local-cs", CustomerServiceBrain)]
)
def test_each_local_model_name_has_its_brain_and_it_implements_the_protocol(
    model: str, kind: type
) -> None:
    brain = brain_for(model)({"seed": 1})
    assert type(brain) is kind
    assert isinstance(brain, Brain)
    assert inspect.signature(kind.respond) == inspect.signature(Brain.respond)


def test_model_names_are_exact_and_an_unknown_one_names_the_choices() -> None:
    assert brain_names() == ["local-agent", "local-caller", "local-cs"]
    for wrong in ("gpt-realtime", "my-caller", "local-cs-2", "", None):
        with pytest.raises(UnknownBrainError) as info:
            brain_for(wrong)
        message = str(info.value)
        assert f"'{wrong or ''}'" in message
        assert "'local-caller', 'local-cs'" in message


def test_a_registered_brain_serves_its_model_name() -> None:
    class Echo:
        def respond(self, given: BrainInput) -> Reply:
            return Reply(text=given.instructions)

    register_brain("test-echo", lambda profile: Echo())
    try:
        assert "test-echo" in brain_names()
        brain = brain_for("test-echo")({})
        assert isinstance(brain, Brain)
        assert brain.respond(BrainInput("hi", {}, [], [])).text == "hi"
    finally:
        registry._FACTORIES.pop("test-echo")


def test_agent_cut_off_before_its_tool_call_went_out_makes_it_when_it_resumes() -> None:
    """Blocking the card was in the reply the caller cut into, so it never happened: the agent
    blocks it now (a word first, not the sentence again), instead of starting over."""
    brain = CustomerServiceBrain({})
    card = {"card_id": "card_1", "kind": "gold credit card", "last4": "4417", "status": "active"}
    customer = {"verified": True, "ok": True, "full_name": "Nancy Wilson", "cards": [card]}
    conversation: list[ConversationEntry] = []
    tools = ["verify_customer", "report_card_lost_or_stolen"]

    def respond(*entries: ConversationEntry):
        conversation.extend(entries)
        return brain.respond(BrainInput("", {}, tools, list(conversation)))

    assert respond().text == GREETING
    reply = respond(
        ConversationEntry("item_1", "assistant", text=GREETING),
        ConversationEntry("item_2", "user", text="i lost my gold card"),
    )
    assert reply.text.startswith("I'm sorry to hear you lost your card")
    reply = respond(
        ConversationEntry("item_3", "assistant", text="I'm sorry ..."),
        ConversationEntry(
            "item_4",
            "user",
            text="my name is nancy wilson and my date of birth is march fourteenth nineteen fifty eight",
        ),
    )
    assert [name for name, _ in reply.tool_calls] == ["verify_customer"]
    reply = respond(
        ConversationEntry("item_5", "assistant", text=reply.text),
        ConversationEntry("item_6", "assistant", call_id="c1", name="verify_customer"),
        ConversationEntry("item_7", "tool", call_id="c1", output=json.dumps(customer)),
    )
    planned = reply.text
    assert planned.endswith("I'm blocking your gold credit card ending in four four one seven now.")
    assert [name for name, _ in reply.tool_calls] == ["report_card_lost_or_stolen"]
    # Cut off mid-sentence; the function call never reached the conversation.
    kept = planned.split("I'm blocking")[0] + "I'm blocking your gold"
    reply = respond(
        ConversationEntry("item_8", "assistant", text=kept),
        ConversationEntry("item_9", "user", text="yes yes go on go on"),
    )
    assert reply.text == "Sure, one moment."
    assert reply.tool_calls == [
        ("report_card_lost_or_stolen", {"card_id": "card_1", "reason": "lost"})
    ]
