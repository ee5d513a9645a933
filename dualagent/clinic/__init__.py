"""Riverside Clinic: the appointment line behind the shipped ``clinic`` agent spec.

The state (:mod:`.state`: clinicians, weekly slots, patients, appointments; deterministic, no
clocks) and the tools (:mod:`.tools`: find_patient, find_slots, book_appointment,
reschedule_appointment, cancel_appointment, transfer_to_human, end_call) that
``dualagent/data/agents/clinic.yaml`` names. A scenario's ``state:`` mapping replaces lists of
the default clinic (:func:`.state.default_clinic`).
"""

from dualagent.clinic.state import ClinicData, ClinicState, default_clinic, new_state
from dualagent.clinic.tools import TOOLS

__all__ = ["TOOLS", "ClinicData", "ClinicState", "default_clinic", "new_state"]
