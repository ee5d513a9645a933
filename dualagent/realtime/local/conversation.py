"""The conversation of one local Realtime session: its items in order, and what the brain sees.

The hosted service keeps a session's items as an ordered list that a client can insert into
anywhere (``conversation.item.create`` with ``previous_item_id``: an item id, or ``"root"`` for
the start) and delete from. Every ``conversation.item.added`` names the item just before the new
one, and clients (LiveKit's realtime plugin, for one) rebuild the same list from those ids, so
they must be right. :class:`Conversation` holds that order; no I/O, no protocol events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dualagent.realtime import server_events as ev
from dualagent.realtime.truncation import SpokenAlignment

ROOT = "root"
"""``previous_item_id`` that puts an item at the start of the conversation."""


@dataclass
class ConversationEntry:
    """What the brain sees of one item: who, what was said or heard, or a tool call/result."""

    item_id: str
    role: str  # "user" (the other party), "assistant" (this agent), "system", "tool"
    text: str = ""
    pending: bool = False  # audio not transcribed yet
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    audio_ms: int = 0  # assistant messages: how much audio was sent (or kept after truncation)
    # Assistant messages: where each sentence starts in the audio, to truncate at a word.
    alignment: SpokenAlignment = field(default_factory=SpokenAlignment)


class Conversation:
    """A session's items (as sent on the wire) and their entries, in conversation order."""

    def __init__(self) -> None:
        self.items: dict[str, ev.Item] = {}
        self.entries: dict[str, ConversationEntry] = {}

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.items

    def last_id(self) -> str | None:
        """The id of the last item, or ``None`` when the conversation is empty."""
        return next(reversed(self.items), None)

    def previous_id(self, item_id: str) -> str | None:
        """The id of the item just before ``item_id`` (``None`` for the first one)."""
        previous = None
        for current in self.items:
            if current == item_id:
                return previous
            previous = current
        raise KeyError(item_id)

    def insert(
        self, item: ev.Item, entry: ConversationEntry, after: str | None = None
    ) -> str | None:
        """Add ``item`` after the item ``after`` (at the end when ``None``, at the start for
        :data:`ROOT`); returns the id of the item now before it. ``after`` must exist."""
        assert item.id is not None
        if after is None or after == self.last_id():
            previous = self.last_id()
            self.items[item.id] = item
            self.entries[item.id] = entry
            return previous
        if after != ROOT and after not in self.items:
            raise KeyError(after)
        items = list(self.items.items())
        at = 0 if after == ROOT else [i for i, _ in items].index(after) + 1
        items.insert(at, (item.id, item))
        self.items = dict(items)
        self.entries = {item_id: self.entries.get(item_id, entry) for item_id in self.items}
        return None if after == ROOT else after

    def delete(self, item_id: str) -> None:
        del self.items[item_id]
        del self.entries[item_id]

    def in_order(self) -> list[ConversationEntry]:
        """The entries, oldest first, as the brain reads them."""
        return list(self.entries.values())
