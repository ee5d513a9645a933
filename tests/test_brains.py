"""The scripted brains, fed conversations directly (no server, no engines)."""

from dualagent.realtime.local.brains.base import BrainInput
from dualagent.realtime.local.brains.cs import CustomerServiceBrain
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
