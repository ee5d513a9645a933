"""Harbor Hotel's tools: the python side of the example agent spec (agent.yaml).

Each tool is ``function(arguments, state) -> dict``; a refusal is ``{"ok": False, "error": ...}``
(the agent reads it and the call goes on). The state is one call's hotel: made by ``new_state``
from the scenario's ``state:`` mapping, recorded at the end through ``snapshot()``.
"""

from __future__ import annotations

from typing import Any

NIGHTS = ("Friday", "Saturday", "Sunday")


class Hotel:
    def __init__(self, free_rooms: dict[str, int]) -> None:
        self.free_rooms = dict(free_rooms)
        self.bookings: list[dict[str, Any]] = []

    def snapshot(self) -> dict[str, Any]:
        return {"free_rooms": dict(self.free_rooms), "bookings": list(self.bookings)}


def new_state(data: dict[str, Any] | None = None) -> Hotel:
    """A hotel with two free rooms a night, or the scenario's ``free_rooms``."""
    free = {night: 2 for night in NIGHTS}
    free.update((data or {}).get("free_rooms", {}))
    return Hotel(free)


def _night(arguments: dict[str, Any]) -> str | None:
    said = str(arguments.get("night", "")).strip().lower()
    return next((n for n in NIGHTS if n.lower() in said), None)


def check_availability(arguments: dict[str, Any], hotel: Hotel) -> dict[str, Any]:
    night = _night(arguments)
    if night is None:
        return {"ok": False, "error": f"we take bookings for {', '.join(NIGHTS)} nights only"}
    rooms = hotel.free_rooms[night]
    return {"ok": True, "night": night, "rooms": rooms, "answer": "a room" if rooms else "no room"}


def book_room(arguments: dict[str, Any], hotel: Hotel) -> dict[str, Any]:
    night = _night(arguments)
    guest = str(arguments.get("guest_name", "")).strip()
    if night is None or not guest:
        return {"ok": False, "error": "a booking needs the night and the guest's full name"}
    if hotel.free_rooms[night] == 0:
        return {"ok": False, "error": f"there is no room left on {night} night"}
    hotel.free_rooms[night] -= 1
    booking = {"booking_id": f"H-{len(hotel.bookings) + 1}", "guest": guest, "night": night}
    hotel.bookings.append(booking)
    return {"ok": True, **booking}


def end_call(arguments: dict[str, Any], hotel: Hotel) -> dict[str, Any]:
    return {"ok": True, "ended": True}
