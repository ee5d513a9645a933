"""Riverside Clinic's tools, as python tools of the shipped ``clinic`` spec.

Each is ``tool(arguments, state) -> dict`` and never raises on bad input: a missing or wrong
argument, an unknown patient, a taken slot all answer ``{"ok": false, "error": "..."}`` with a
sentence an agent can read to the caller. Arguments are read forgivingly (``"tuesday please"``,
``"Dr. Lee"``, ``"may fourteenth nineteen eighty"``), as a scripted agent fills them from speech.

Policy: ``find_patient`` (full name and date of birth) first; booking, moving and cancelling
act only for a patient found in this call, and only on that patient's appointments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dualagent.clinic.spoken import DAYS, mentions_name, name_key, parse_date, parse_day
from dualagent.clinic.state import Appointment, ClinicState, Slot

__all__ = [
    "book_appointment",
    "cancel_appointment",
    "end_call",
    "find_patient",
    "find_slots",
    "reschedule_appointment",
    "transfer_to_human",
]

Result = dict[str, Any]
_OPEN_DAYS = "Monday to Friday"
_SHOWN = 3  # free times said in one answer, as a receptionist would


def _error(message: str, **extra: Any) -> Result:
    return {"ok": False, "error": message, **extra}


def _read(
    tool: str,
    arguments: Any,
    state: Any,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> tuple[dict[str, str], Result | None]:
    """The arguments as stripped strings, or an error result saying what is wrong."""
    if not isinstance(state, ClinicState):
        return {}, _error(f"{tool}: the clinic's records are not available")
    if state.call_ended is not None:
        return {}, _error(f"{tool}: the call has ended ({state.call_ended})")
    if not isinstance(arguments, dict):
        kind = type(arguments).__name__
        return {}, _error(f"{tool}: arguments must be an object, got {kind}")
    known = required + optional
    unknown = [k for k in arguments if k not in known]
    if unknown:
        return {}, _error(f"{tool}: unknown argument {unknown[0]!r}; valid: {', '.join(known)}")
    values: dict[str, str] = {}
    for key, value in arguments.items():
        if value is None:
            continue
        if not isinstance(value, str | int) or isinstance(value, bool):
            return {}, _error(f"{tool}: {key} must be text, got {type(value).__name__}")
        if str(value).strip():
            values[key] = str(value).strip()
    missing = [k for k in required if k not in values]
    if missing:
        return {}, _error(f"{tool} needs {_and(missing)}")
    return values, None


def _verified(state: ClinicState, tool: str, patient_id: str) -> Result | None:
    """An error unless find_patient found this patient in this call."""
    if state.patient(patient_id) is None:
        return _error(f"{tool}: there is no patient {patient_id!r}")
    if patient_id not in state.verified_patients:
        return _error(f"{tool}: find the patient with find_patient first")
    return None


# ------------------------------------------------------------------------------ the tools


def find_patient(arguments: dict[str, Any], state: ClinicState) -> Result:
    """The patient with this full name and date of birth, and their booked appointments."""
    args, refused = _read("find_patient", arguments, state, ("full_name", "date_of_birth"))
    if refused:
        return refused
    born = parse_date(args["date_of_birth"])
    if born is None:
        return _error("I need the date of birth with the day, the month and the year")
    name = name_key(args["full_name"])
    patient = next(
        (p for p in state.patients if name_key(p.full_name) == name and p.date_of_birth == born),
        None,
    )
    if patient is None:
        state.failed_lookups += 1
        return _error("I could not find a patient with that name and date of birth")
    if patient.patient_id not in state.verified_patients:
        state.verified_patients.append(patient.patient_id)
    return {
        "ok": True,
        "patient_id": patient.patient_id,
        "full_name": patient.full_name,
        # Readable fields after the id, named apart from find_slots' arguments ("day").
        "appointments": [
            {
                "appointment_id": view["appointment_id"],
                "clinician_name": view["clinician"],
                "appointment_day": view["day"],
                "appointment_time": view["time"],
            }
            for view in map(state.appointment_view, state.booked_for(patient.patient_id))
        ],
    }


def find_slots(arguments: dict[str, Any], state: ClinicState) -> Result:
    """Free times on a weekday, for one clinician, one specialty, or everyone."""
    args, refused = _read("find_slots", arguments, state, ("day",), ("clinician", "specialty"))
    if refused:
        return refused
    day = parse_day(args["day"])
    if day is None:
        return _error(f"which day? We see patients {_OPEN_DAYS}")
    if "clinician" in args:
        who = [c for c in state.clinicians if mentions_name(args["clinician"], c.name)]
        if not who:
            names = _and([c.name for c in state.clinicians])
            return _error(f"there is no {args['clinician']} here; our clinicians are {names}")
    elif "specialty" in args:
        wanted = set(name_key(args["specialty"]).split())
        who = [c for c in state.clinicians if wanted & set(name_key(c.specialty).split())]
        if not who:
            kinds = _and(sorted({c.specialty for c in state.clinicians}))
            return _error(f"we have no {args['specialty']}; we offer {kinds}")
    else:
        who = list(state.clinicians)
    slots = state.free_slots(day, [c.clinician_id for c in who])
    return {
        "ok": True,
        "day": day,
        "slots": [state.slot_view(s) for s in slots],
        "summary": _summary(state, day, who, slots),
    }


def book_appointment(arguments: dict[str, Any], state: ClinicState) -> Result:
    """Book a free slot (from find_slots) for a patient found with find_patient."""
    args, refused = _read(
        "book_appointment", arguments, state, ("patient_id", "slot_id"), ("reason",)
    )
    if refused:
        return refused
    refused = _verified(state, "book_appointment", args["patient_id"])
    if refused:
        return refused
    slot = _free_slot(state, args["slot_id"])
    if not isinstance(slot, Slot):
        return slot
    clash = next(
        (
            a
            for a in state.booked_for(args["patient_id"])
            if (s := state.slot(a.slot_id)) and (s.day, s.time) == (slot.day, slot.time)
        ),
        None,
    )
    if clash is not None:
        return _error(f"you already have an appointment on {slot.day} at {slot.time}")
    appointment = Appointment(
        appointment_id=state.next_appointment_id(),
        patient_id=args["patient_id"],
        slot_id=slot.slot_id,
        reason=args.get("reason"),
    )
    state.appointments.append(appointment)
    return {"ok": True, **_public(state.appointment_view(appointment))}


def reschedule_appointment(arguments: dict[str, Any], state: ClinicState) -> Result:
    """Move a patient's booked appointment to another free slot."""
    args, refused = _read(
        "reschedule_appointment", arguments, state, ("patient_id", "appointment_id", "slot_id")
    )
    if refused:
        return refused
    appointment = _own_appointment(state, "reschedule_appointment", args)
    if not isinstance(appointment, Appointment):
        return appointment
    if args["slot_id"] == appointment.slot_id:
        return _error("that is the time the appointment already has")
    slot = _free_slot(state, args["slot_id"])
    if not isinstance(slot, Slot):
        return slot
    old = state.slot(appointment.slot_id)
    appointment.rescheduled_from = appointment.slot_id
    appointment.slot_id = slot.slot_id
    return {
        "ok": True,
        **_public(state.appointment_view(appointment)),
        "old_day": old.day if old else None,
        "old_time": old.time if old else None,
    }


def cancel_appointment(arguments: dict[str, Any], state: ClinicState) -> Result:
    """Cancel a patient's booked appointment (its slot becomes free)."""
    args, refused = _read(
        "cancel_appointment", arguments, state, ("patient_id", "appointment_id"), ("reason",)
    )
    if refused:
        return refused
    appointment = _own_appointment(state, "cancel_appointment", args)
    if not isinstance(appointment, Appointment):
        return appointment
    appointment.status = "cancelled"
    if args.get("reason"):
        appointment.reason = args["reason"]
    return {"ok": True, **_public(state.appointment_view(appointment))}


def transfer_to_human(arguments: dict[str, Any], state: ClinicState) -> Result:
    """Put the caller through to the front desk (ends the call for the agent)."""
    args, refused = _read("transfer_to_human", arguments, state, ("reason",))
    if refused:
        return refused
    state.transfers.append({"reason": args["reason"], "queue": "front desk"})
    state.call_ended, state.ended_by = "transferred_to_human", "cs"
    return {"ok": True, "transferred": True, "queue": "front desk"}


def end_call(arguments: dict[str, Any], state: ClinicState) -> Result:
    """The agent hangs up."""
    args, refused = _read("end_call", arguments, state, ("reason",))
    if refused:
        return refused
    state.call_ended, state.ended_by = args["reason"], "cs"
    return {"ok": True, "ended": True}


# ------------------------------------------------------------------------------ helpers


def _free_slot(state: ClinicState, slot_id: str) -> Slot | Result:
    slot = state.slot(slot_id)
    if slot is None:
        return _error(f"there is no slot {slot_id!r}; find one with find_slots")
    if state.booking_of(slot.slot_id) is not None:
        clinician = state.clinician(slot.clinician_id)
        others = state.free_slots(slot.day, [slot.clinician_id])
        still = (
            f"; {clinician.name if clinician else 'they'} is still free at "
            + _or([s.time for s in others[:_SHOWN]])
            if others
            else ""
        )
        return _error(f"{slot.day} at {slot.time} is already taken{still}")
    return slot


def _own_appointment(state: ClinicState, tool: str, args: dict[str, str]) -> Appointment | Result:
    """The patient's booked appointment named by ``appointment_id``, or an error result."""
    refused = _verified(state, tool, args["patient_id"])
    if refused:
        return refused
    appointment = state.appointment(args["appointment_id"])
    if appointment is None or appointment.patient_id != args["patient_id"]:
        booked = state.booked_for(args["patient_id"])
        if not booked:
            return _error("you have no appointments booked")
        return _error(f"you have no appointment {args['appointment_id']!r}")
    if appointment.status != "booked":
        return _error(f"that appointment is already {appointment.status}")
    return appointment


def _public(view: dict[str, Any]) -> dict[str, Any]:
    """An appointment as a tool answers it: what the agent reads back, and the ids."""
    keys = ("appointment_id", "patient", "clinician", "day", "time", "status")
    return {k: view[k] for k in keys if k in view}


def _summary(state: ClinicState, day: str, who: list[Any], slots: list[Slot]) -> str:
    """The answer in one or two sentences (times as HH:MM; a speaking agent says them)."""
    if slots:
        return f"We have free times on {day}."
    if len(who) == 1:
        days = [d for d in DAYS if d != day and state.free_slots(d, [who[0].clinician_id])]
        later = f" {who[0].name} is free on {_or(days)}." if days else ""
        return f"{who[0].name} has no free time on {day}.{later}"
    return f"We have no free time on {day}."


def _join(items: list[str], word: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def _and(items: list[str]) -> str:
    return _join(items, "and")


def _or(items: list[str]) -> str:
    return _join(items, "or")


TOOLS: dict[str, Callable[[dict[str, Any], ClinicState], Result]] = {
    "find_patient": find_patient,
    "find_slots": find_slots,
    "book_appointment": book_appointment,
    "reschedule_appointment": reschedule_appointment,
    "cancel_appointment": cancel_appointment,
    "transfer_to_human": transfer_to_human,
    "end_call": end_call,
}
"""The clinic's tools by name (the spec names each by its module path)."""
