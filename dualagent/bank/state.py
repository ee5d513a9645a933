"""One call's bank: the fixture's records plus what the call changed, and the access policy.

Policy (verify the caller first, then touch only that customer's data) is enforced here in the
data layer rather than in prompts, so a model that ignores its instructions still cannot act on
an unverified caller's behalf.
"""

from typing import Any

from pydantic import BaseModel

from dualagent.bank.records import (
    Account,
    AddressChange,
    BankFixture,
    Card,
    Customer,
    Dispute,
    ReplacementOrder,
    Transaction,
    Transfer,
    default_fixture,
)

__all__ = ["MAX_VERIFICATION_ATTEMPTS", "BankState", "ToolError"]

MAX_VERIFICATION_ATTEMPTS = 3


class ToolError(Exception):
    """A refusal the model should read; `execute_tool` turns it into {"ok": false, ...}."""


class BankState(BaseModel):
    customers: list[Customer]
    accounts: list[Account]
    cards: list[Card]
    transactions: list[Transaction]
    replacement_orders: list[ReplacementOrder] = []
    disputes: list[Dispute] = []
    address_changes: list[AddressChange] = []
    transfers: list[Transfer] = []
    verified_customer_id: str | None = None
    failed_verifications: int = 0
    call_ended: str | None = None
    ended_by: str | None = None

    @classmethod
    def from_fixture(cls, fixture: BankFixture | dict[str, Any] | None = None) -> "BankState":
        if fixture is None:
            fixture = default_fixture()
        elif isinstance(fixture, dict):
            fixture = BankFixture.from_dict(fixture)
        # Deep copy: a fixture may be reused for many calls and must never be mutated by one.
        seed = fixture.model_copy(deep=True)
        return cls(
            customers=seed.customers,
            accounts=seed.accounts,
            cards=seed.cards,
            transactions=seed.transactions,
        )

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable dump of the whole state."""
        return self.model_dump(mode="json")

    # ---- lookups -----------------------------------------------------------------------------

    def customer(self, customer_id: str) -> Customer | None:
        return next((c for c in self.customers if c.customer_id == customer_id), None)

    def cards_of(self, customer_id: str) -> list[Card]:
        return [c for c in self.cards if c.customer_id == customer_id]

    def accounts_of(self, customer_id: str) -> list[Account]:
        return [a for a in self.accounts if a.customer_id == customer_id]

    @property
    def verification_locked(self) -> bool:
        return self.failed_verifications >= MAX_VERIFICATION_ATTEMPTS

    # ---- policy helpers (raise ToolError) ---------------------------------------------------

    def _verified(self) -> Customer:
        customer = self.customer(self.verified_customer_id or "")
        if customer is None:
            raise ToolError("customer not verified: call verify_customer first")
        return customer

    def _own_customer(self, customer_id: str) -> Customer:
        customer = self._verified()
        if customer_id != customer.customer_id:
            raise ToolError(
                f"customer {customer_id} is not the verified customer "
                f"(verified: {customer.customer_id})"
            )
        return customer

    def _own_card(self, card_ref: str) -> Card:
        customer = self._verified()
        own = self.cards_of(customer.customer_id)
        # Accept the last four digits too: that is how callers (and models) name cards.
        card = next((c for c in self.cards if c.card_id == card_ref), None) or next(
            (c for c in own if c.last4 == card_ref), None
        )
        if card is None:
            raise ToolError(
                f"unknown card '{card_ref}'; the verified customer's cards are: "
                + ", ".join(f"{c.card_id} ({c.kind} ending {c.last4})" for c in own)
            )
        if card.customer_id != customer.customer_id:
            raise ToolError(f"card {card.card_id} does not belong to the verified customer")
        return card

    def _own_account(self, account_id: str) -> Account:
        customer = self._verified()
        account = next((a for a in self.accounts if a.account_id == account_id), None)
        if account is None:
            raise ToolError(
                f"unknown account '{account_id}'; the verified customer's accounts are: "
                + ", ".join(a.account_id for a in self.accounts_of(customer.customer_id))
            )
        if account.customer_id != customer.customer_id:
            raise ToolError(f"account {account_id} does not belong to the verified customer")
        return account

    def _own_transaction(self, transaction_id: str) -> Transaction:
        customer = self._verified()
        txn = next((t for t in self.transactions if t.transaction_id == transaction_id), None)
        if txn is None:
            raise ToolError(
                f"unknown transaction '{transaction_id}'; "
                "use get_recent_transactions to find the id"
            )
        own_accounts = {a.account_id for a in self.accounts_of(customer.customer_id)}
        if txn.account_id not in own_accounts:
            raise ToolError(
                f"transaction {transaction_id} does not belong to the verified customer"
            )
        return txn

    def _new_last4(self, old_last4: str) -> str:
        # Deterministic and unique: step away from the old number until nothing collides.
        taken = {c.last4 for c in self.cards}
        candidate = int(old_last4)
        while True:
            candidate = (candidate + 1111) % 10000
            last4 = f"{candidate:04d}"
            if last4 not in taken and f"CARD-{last4}" not in {c.card_id for c in self.cards}:
                return last4
