"""One call's clinic: clinicians, their slots, patients and appointments, and what the call did.

Deterministic: no clocks (a slot is a weekday and a time), and new appointments are numbered by
a counter, so the same call gives the same state. The access policy (find the patient first,
then act only on that patient's appointments) lives here and in the tools, not in a prompt, so
an agent that ignores its instructions still cannot book for someone it has not verified.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dualagent.clinic.spoken import DAYS
from dualagent.errors import describe_validation_error

__all__ = [
    "Appointment",
    "ClinicData",
    "ClinicState",
    "Clinician",
    "Patient",
    "Slot",
    "default_clinic",
    "new_state",
]

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Clinician(_Strict):
    clinician_id: str = Field(min_length=1)
    name: str = Field(min_length=1, description='as the receptionist says it: "Doctor Lee"')
    specialty: str = Field(min_length=1, description='e.g. "general practice", "nurse"')


class Patient(_Strict):
    patient_id: str = Field(min_length=1)
    full_name: str = Field(min_length=1)
    date_of_birth: str = Field(description="YYYY-MM-DD")

    @field_validator("date_of_birth")
    @classmethod
    def _iso(cls, value: str) -> str:
        from datetime import date

        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date as YYYY-MM-DD") from None
        return value


class Slot(_Strict):
    """A time a clinician sees patients: a weekday and a time (24-hour HH:MM)."""

    slot_id: str = Field(min_length=1)
    clinician_id: str
    day: str
    time: str

    @field_validator("day")
    @classmethod
    def _day(cls, value: str) -> str:
        day = next((d for d in DAYS if d.lower() == value.strip().lower()), None)
        if day is None:
            raise ValueError(f"{value!r} is not a weekday; valid: {', '.join(DAYS)}")
        return day

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        match = _HHMM.match(value.strip())
        if not match:
            raise ValueError(f"{value!r} is not a time as HH:MM (24-hour)")
        return f"{int(match.group(1)):02d}:{match.group(2)}"


class Appointment(_Strict):
    appointment_id: str = Field(min_length=1)
    patient_id: str
    slot_id: str
    status: Literal["booked", "cancelled"] = "booked"
    reason: str | None = None
    rescheduled_from: str | None = Field(None, description="the slot it was moved from")


class ClinicData(_Strict):
    """A clinic as data (what a scenario's ``state:`` holds): every reference checked."""

    clinicians: list[Clinician] = Field(min_length=1)
    patients: list[Patient] = Field(default_factory=list)
    slots: list[Slot] = Field(default_factory=list)
    appointments: list[Appointment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> ClinicData:
        for kind, ids in (
            ("clinician_id", [c.clinician_id for c in self.clinicians]),
            ("patient_id", [p.patient_id for p in self.patients]),
            ("slot_id", [s.slot_id for s in self.slots]),
            ("appointment_id", [a.appointment_id for a in self.appointments]),
        ):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"{kind} must be unique: {', '.join(twice)} given twice")
        clinicians = {c.clinician_id for c in self.clinicians}
        patients = {p.patient_id for p in self.patients}
        slots = {s.slot_id for s in self.slots}
        for slot in self.slots:
            if slot.clinician_id not in clinicians:
                raise ValueError(f"slot {slot.slot_id}: unknown clinician {slot.clinician_id!r}")
        taken: dict[str, str] = {}
        for appointment in self.appointments:
            where = f"appointment {appointment.appointment_id}"
            if appointment.patient_id not in patients:
                raise ValueError(f"{where}: unknown patient {appointment.patient_id!r}")
            if appointment.slot_id not in slots:
                raise ValueError(f"{where}: unknown slot {appointment.slot_id!r}")
            if appointment.status == "booked":
                other = taken.setdefault(appointment.slot_id, appointment.appointment_id)
                if other != appointment.appointment_id:
                    raise ValueError(f"{where}: slot {appointment.slot_id} is already {other}'s")
        return self


def _slots(clinician_id: str, times: dict[str, list[str]]) -> list[dict[str, str]]:
    """Slots with readable ids: LEE-TUE-0900."""
    return [
        {"slot_id": f"{clinician_id}-{day[:3].upper()}-{time.replace(':', '')}",
         "clinician_id": clinician_id, "day": day, "time": time}
        for day, hours in times.items()
        for time in hours
    ]  # fmt: skip


def default_clinic() -> dict[str, Any]:
    """Riverside Clinic's week: three clinicians, six patients, four appointments already
    booked (Friday is fully booked)."""
    return {
        "clinicians": [
            {"clinician_id": "LEE", "name": "Doctor Lee", "specialty": "general practice"},
            {"clinician_id": "BROWN", "name": "Doctor Brown", "specialty": "general practice"},
            {"clinician_id": "GREEN", "name": "Nurse Green", "specialty": "nurse"},
        ],
        "patients": [
            {"patient_id": "P1", "full_name": "Mary Jones", "date_of_birth": "1980-05-14"},
            {"patient_id": "P2", "full_name": "John Smith", "date_of_birth": "1975-11-02"},
            {"patient_id": "P3", "full_name": "Susan Clark", "date_of_birth": "1962-07-21"},
            {"patient_id": "P4", "full_name": "David Miller", "date_of_birth": "1990-03-08"},
            {"patient_id": "P5", "full_name": "Linda Hall", "date_of_birth": "1955-09-30"},
            {"patient_id": "P6", "full_name": "James Wood", "date_of_birth": "1968-01-25"},
        ],
        "slots": [
            *_slots(
                "LEE",
                {
                    "Monday": ["09:00", "10:00"],
                    "Tuesday": ["09:00", "14:00"],
                    "Thursday": ["10:00", "15:00"],
                },
            ),
            *_slots(
                "BROWN",
                {
                    "Monday": ["14:00", "15:00"],
                    "Wednesday": ["09:00", "11:00"],
                    "Friday": ["09:00", "10:00"],
                },
            ),
            *_slots("GREEN", {"Tuesday": ["10:00", "11:00"], "Thursday": ["09:00", "14:00"]}),
        ],
        "appointments": [
            {"appointment_id": "A-1", "patient_id": "P3", "slot_id": "LEE-TUE-0900"},
            {"appointment_id": "A-2", "patient_id": "P4", "slot_id": "BROWN-MON-1400"},
            {"appointment_id": "A-3", "patient_id": "P5", "slot_id": "BROWN-FRI-0900"},
            {"appointment_id": "A-4", "patient_id": "P6", "slot_id": "BROWN-FRI-1000"},
        ],
    }


class ClinicState:
    """The clinic during one call; the tools in :mod:`dualagent.clinic.tools` change it."""

    def __init__(self, data: ClinicData) -> None:
        data = data.model_copy(deep=True)  # a scenario's data is shared by many calls
        self.clinicians = data.clinicians
        self.patients = data.patients
        self.slots = data.slots
        self.appointments = data.appointments
        self.verified_patients: list[str] = []
        self.failed_lookups = 0
        self.transfers: list[dict[str, str]] = []
        # The toolbox sets these when the caller hangs up (a state without them never ends).
        self.call_ended: str | None = None
        self.ended_by: str | None = None
        self._counter = 1 + max((_number(a.appointment_id) for a in self.appointments), default=0)

    # -- lookups --------------------------------------------------------------------------

    def clinician(self, clinician_id: str) -> Clinician | None:
        return next((c for c in self.clinicians if c.clinician_id == clinician_id), None)

    def patient(self, patient_id: str) -> Patient | None:
        return next((p for p in self.patients if p.patient_id == patient_id), None)

    def slot(self, slot_id: str) -> Slot | None:
        return next((s for s in self.slots if s.slot_id == slot_id), None)

    def appointment(self, appointment_id: str) -> Appointment | None:
        return next((a for a in self.appointments if a.appointment_id == appointment_id), None)

    def booking_of(self, slot_id: str) -> Appointment | None:
        """The booked appointment holding a slot (None: the slot is free)."""
        return next(
            (a for a in self.appointments if a.slot_id == slot_id and a.status == "booked"), None
        )

    def booked_for(self, patient_id: str) -> list[Appointment]:
        return [a for a in self.appointments if a.patient_id == patient_id and a.status == "booked"]

    def free_slots(self, day: str, clinician_ids: list[str]) -> list[Slot]:
        """Free slots on ``day``, clinician by clinician (in the clinic's order), then by time."""
        order = {c.clinician_id: i for i, c in enumerate(self.clinicians)}
        free = [
            s
            for s in self.slots
            if s.day == day
            and s.clinician_id in clinician_ids
            and self.booking_of(s.slot_id) is None
        ]
        return sorted(free, key=lambda s: (order.get(s.clinician_id, 0), s.time))

    def next_appointment_id(self) -> str:
        taken = {a.appointment_id for a in self.appointments}
        while f"A-{self._counter}" in taken:
            self._counter += 1
        return f"A-{self._counter}"

    # -- views ----------------------------------------------------------------------------

    def slot_view(self, slot: Slot) -> dict[str, Any]:
        """A slot as tools answer and the snapshot records it (readable fields after the id)."""
        clinician = self.clinician(slot.clinician_id)
        return {
            "slot_id": slot.slot_id,
            "clinician": clinician.name if clinician else slot.clinician_id,
            "day": slot.day,
            "time": slot.time,
        }

    def appointment_view(self, appointment: Appointment) -> dict[str, Any]:
        slot = self.slot(appointment.slot_id)
        clinician = self.clinician(slot.clinician_id) if slot else None
        patient = self.patient(appointment.patient_id)
        view: dict[str, Any] = {
            "appointment_id": appointment.appointment_id,
            "patient_id": appointment.patient_id,
            "patient": patient.full_name if patient else None,
            "slot_id": appointment.slot_id,
            "clinician_id": slot.clinician_id if slot else None,
            "clinician": clinician.name if clinician else None,
            "day": slot.day if slot else None,
            "time": slot.time if slot else None,
            "status": appointment.status,
        }
        if appointment.reason:
            view["reason"] = appointment.reason
        if appointment.rescheduled_from:
            old = self.slot(appointment.rescheduled_from)
            view["rescheduled_from"] = {
                "slot_id": appointment.rescheduled_from,
                "day": old.day if old else None,
                "time": old.time if old else None,
            }
        return view

    def snapshot(self) -> dict[str, Any]:
        """The clinic as JSON-able data (recorded as ``agent_state``; checks read its paths,
        e.g. ``appointments.0.status``)."""
        return {
            "clinicians": [c.model_dump() for c in self.clinicians],
            "patients": [p.model_dump() for p in self.patients],
            "slots": [
                {**self.slot_view(s), "free": self.booking_of(s.slot_id) is None}
                for s in self.slots
            ],
            "appointments": [self.appointment_view(a) for a in self.appointments],
            "verified_patients": list(self.verified_patients),
            "transfers": [dict(t) for t in self.transfers],
            "call_ended": self.call_ended,
            "ended_by": self.ended_by,
        }


def _number(appointment_id: str) -> int:
    digits = re.findall(r"\d+", appointment_id)
    return int(digits[-1]) if digits else 0


def new_state(data: Mapping[str, Any] | ClinicData | None = None) -> ClinicState:
    """The call's clinic: the default week, with the lists a scenario's ``state:`` gives
    (``clinicians``, ``patients``, ``slots``, ``appointments``) in place of the default's.

    Raises ValueError (one line: the field and the reason) for data that is not a clinic.
    """
    if isinstance(data, ClinicData):
        return ClinicState(data)
    if data is not None and not isinstance(data, Mapping):
        raise ValueError(f"a clinic's state must be a mapping, got {type(data).__name__}")
    merged = {**default_clinic(), **dict(data or {})}
    try:
        clinic = ClinicData.model_validate(merged)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc, model=ClinicData)) from None
    return ClinicState(clinic)
