"""In-memory banking domain for the customer-service agent, and its Realtime function tools.

One `BankState` per call: seeded from a `BankFixture`, changed only through `execute_tool`, and
dumped with `BankState.snapshot()` for recording and evaluation. Everything is deterministic
(counter-based ids, no clocks, no randomness): the same calls on the same fixture always give
the same state.

- :mod:`.records`: the fixture and its records (customers, cards, accounts, transactions, ...);
- :mod:`.state`: one call's state and the policy (verify first, then only that customer);
- :mod:`.tools`: the function tools (argument models, handlers, schemas, ``execute_tool``).
"""

from dualagent.bank.records import (
    BLOCKED_STATUSES,
    PROVISIONAL_CREDIT_DAYS,
    Account,
    AddressChange,
    BankFixture,
    Card,
    CardStatus,
    Customer,
    Dispute,
    ReplacementOrder,
    Transaction,
    Transfer,
    default_fixture,
)
from dualagent.bank.state import MAX_VERIFICATION_ATTEMPTS, BankState
from dualagent.bank.tools import (
    CALLER_TOOLS,
    CS_TOOLS,
    EXPEDITED_DELIVERY,
    STANDARD_DELIVERY,
    execute_tool,
)

__all__ = [
    "BLOCKED_STATUSES",
    "CALLER_TOOLS",
    "CS_TOOLS",
    "EXPEDITED_DELIVERY",
    "MAX_VERIFICATION_ATTEMPTS",
    "PROVISIONAL_CREDIT_DAYS",
    "STANDARD_DELIVERY",
    "Account",
    "AddressChange",
    "BankFixture",
    "BankState",
    "Card",
    "CardStatus",
    "Customer",
    "Dispute",
    "ReplacementOrder",
    "Transaction",
    "Transfer",
    "default_fixture",
    "execute_tool",
]
