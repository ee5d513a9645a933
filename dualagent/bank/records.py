"""The bank's data: customers, accounts, cards, transactions and what calls add to them.

A :class:`BankFixture` is what a call starts from (hand-written YAML or :func:`default_fixture`);
its records reject unknown fields, so a typo in a fixture fails loudly.
"""

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "BLOCKED_STATUSES",
    "PROVISIONAL_CREDIT_DAYS",
    "Account",
    "AddressChange",
    "BankFixture",
    "Card",
    "CardStatus",
    "Customer",
    "Dispute",
    "ReplacementOrder",
    "Transaction",
    "Transfer",
    "default_fixture",
]

PROVISIONAL_CREDIT_DAYS = 10

CardStatus = Literal["active", "blocked_lost", "blocked_stolen", "replaced", "closed"]
BLOCKED_STATUSES = ("blocked_lost", "blocked_stolen")


class _Record(BaseModel):
    # Fixtures come from hand-written YAML: reject typos in field names instead of ignoring them.
    model_config = ConfigDict(extra="forbid")


class Customer(_Record):
    customer_id: str
    full_name: str
    date_of_birth: str = Field(description="ISO date, YYYY-MM-DD")
    address: str
    phone: str

    @field_validator("date_of_birth")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        date.fromisoformat(value)
        return value


class Card(_Record):
    card_id: str
    kind: str = Field(description='Spoken description, e.g. "gold credit card"')
    product: str = Field(description='Product line, e.g. "gold", "debit", "platinum"')
    last4: str = Field(pattern=r"^\d{4}$")
    status: CardStatus = "active"
    customer_id: str
    replaced_by: str | None = None


class Account(_Record):
    account_id: str
    customer_id: str
    # "credit" holds a credit card's statement balance (negative = owed).
    kind: Literal["checking", "savings", "credit"]
    balance: float
    currency: str = "USD"

    @field_validator("balance")
    @classmethod
    def _cents(cls, value: float) -> float:
        return round(value, 2)


class Transaction(_Record):
    transaction_id: str
    account_id: str
    card_id: str | None = None
    date: str = Field(description="ISO date, YYYY-MM-DD")
    merchant: str
    amount: float = Field(description="Negative = money out (a charge), positive = money in")
    status: Literal["posted", "pending", "disputed"] = "posted"


class ReplacementOrder(_Record):
    order_id: str
    card_id: str
    new_card_id: str
    new_last4: str
    customer_id: str
    delivery_address: str
    expedited: bool
    estimated_delivery_days: str


class Dispute(_Record):
    dispute_id: str
    transaction_id: str
    customer_id: str
    account_id: str
    merchant: str
    amount: float
    reason: str
    status: Literal["open"] = "open"
    provisional_credit_amount: float
    provisional_credit_days: int = PROVISIONAL_CREDIT_DAYS


class AddressChange(_Record):
    change_id: str
    customer_id: str
    old_address: str
    new_address: str


class Transfer(_Record):
    transfer_id: str
    customer_id: str | None
    reason: str
    queue: str
    estimated_wait_minutes: int


class BankFixture(_Record):
    """Seed data for one call; `BankFixture.from_dict(yaml.safe_load(...))` loads a file."""

    customers: list[Customer]
    accounts: list[Account] = []
    cards: list[Card] = []
    transactions: list[Transaction] = []

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BankFixture":
        return cls.model_validate(data)

    @model_validator(mode="after")
    def _consistent(self) -> "BankFixture":
        # Dangling references would only surface mid-call as confusing tool errors.
        for label, ids in (
            ("customer_id", [c.customer_id for c in self.customers]),
            ("account_id", [a.account_id for a in self.accounts]),
            ("card_id", [c.card_id for c in self.cards]),
            ("transaction_id", [t.transaction_id for t in self.transactions]),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {label}: {', '.join(dupes)}")
        customers = {c.customer_id for c in self.customers}
        accounts = {a.account_id for a in self.accounts}
        cards = {c.card_id for c in self.cards}
        owned = [(a.account_id, a.customer_id) for a in self.accounts]
        owned += [(c.card_id, c.customer_id) for c in self.cards]
        for item_id, customer_id in owned:
            if customer_id not in customers:
                raise ValueError(f"{item_id} refers to unknown customer {customer_id}")
        for txn in self.transactions:
            if txn.account_id not in accounts:
                raise ValueError(f"{txn.transaction_id} refers to unknown account {txn.account_id}")
            if txn.card_id is not None and txn.card_id not in cards:
                raise ValueError(f"{txn.transaction_id} refers to unknown card {txn.card_id}")
        return self


# (id, account, card, date, merchant, amount[, status]) — compact so the story reads at a glance.
_DEFAULT_TRANSACTIONS: tuple[tuple[Any, ...], ...] = (
    ("T-1001", "ACC-1001-CHK", "CARD-9023", "2025-06-02", "Green Valley Grocery", -84.12),
    ("T-1002", "ACC-1001-CC", "CARD-4417", "2025-06-03", "Springfield Pharmacy", -23.50),
    ("T-1003", "ACC-1001-CHK", None, "2025-06-04", "City Water Utility", -61.00),
    ("T-1004", "ACC-1001-CHK", None, "2025-06-05", "Pension Deposit", 1850.00),
    # The suspicious one: an online electronics charge the caller does not recognise.
    ("T-1005", "ACC-1001-CC", "CARD-4417", "2025-06-06", "Electronics Hub Online", -342.99),
    ("T-1006", "ACC-1001-CC", "CARD-4417", "2025-06-07", "Corner Coffee House", -4.75, "pending"),
    ("T-2001", "ACC-1002-CC", "CARD-5582", "2025-06-04", "Riverside Hardware", -129.99),
    ("T-2002", "ACC-1002-CHK", "CARD-3106", "2025-06-06", "Fuel Stop", -52.30),
    ("T-3001", "ACC-1003-CHK", "CARD-7731", "2025-06-05", "Lakeside Books", -18.95),
)


def default_fixture() -> BankFixture:
    """Three customers; the first, Nancy Wilson, is the default caller (lost gold card)."""
    return BankFixture.from_dict(
        {
            "customers": [
                {
                    "customer_id": "CUST-1001",
                    "full_name": "Nancy Wilson",
                    "date_of_birth": "1958-03-14",
                    "address": "12 Oak Street, Springfield",
                    "phone": "555-0142",
                },
                {
                    "customer_id": "CUST-1002",
                    "full_name": "Karen Davis",
                    "date_of_birth": "1971-09-02",
                    "address": "48 Maple Avenue, Riverside",
                    "phone": "555-0187",
                },
                {
                    "customer_id": "CUST-1003",
                    "full_name": "David Brown",
                    "date_of_birth": "1985-12-21",
                    "address": "7 Hill Road, Lakeside",
                    "phone": "555-0113",
                },
            ],
            "accounts": [
                _acct("ACC-1001-CHK", "CUST-1001", "checking", 2450.75),
                _acct("ACC-1001-SAV", "CUST-1001", "savings", 12800.00),
                _acct("ACC-1001-CC", "CUST-1001", "credit", -1210.34),
                _acct("ACC-1002-CHK", "CUST-1002", "checking", 5320.10),
                _acct("ACC-1002-CC", "CUST-1002", "credit", -845.00),
                _acct("ACC-1003-CHK", "CUST-1003", "checking", 980.42),
                _acct("ACC-1003-SAV", "CUST-1003", "savings", 3150.00),
            ],
            "cards": [
                _card("CARD-4417", "CUST-1001", "gold credit card", "gold"),
                _card("CARD-9023", "CUST-1001", "debit card", "debit"),
                _card("CARD-5582", "CUST-1002", "platinum credit card", "platinum"),
                _card("CARD-3106", "CUST-1002", "debit card", "debit"),
                _card("CARD-7731", "CUST-1003", "debit card", "debit"),
            ],
            "transactions": [_txn(*row) for row in _DEFAULT_TRANSACTIONS],
        }
    )


def _acct(account_id: str, customer_id: str, kind: str, balance: float) -> dict[str, Any]:
    return {"account_id": account_id, "customer_id": customer_id, "kind": kind, "balance": balance}


def _card(card_id: str, customer_id: str, kind: str, product: str) -> dict[str, Any]:
    return {
        "card_id": card_id,
        "customer_id": customer_id,
        "kind": kind,
        "product": product,
        "last4": card_id.removeprefix("CARD-"),
    }


def _txn(
    transaction_id: str,
    account_id: str,
    card_id: str | None,
    day: str,
    merchant: str,
    amount: float,
    status: str = "posted",
) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id,
        "account_id": account_id,
        "card_id": card_id,
        "date": day,
        "merchant": merchant,
        "amount": amount,
        "status": status,
    }
