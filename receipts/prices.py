"""What a message costs when its provider's receipts do not say: the connection's price list."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from receipts.models import ConnectionPrice


@dataclass(frozen=True)
class Price:
    price: Decimal
    currency: str


def listed_price(*, connection_id: int, country: str) -> Price | None:
    """The connection's price for `country`, else its price for any other country, else None.
    One indexed lookup (the unique connection + country constraint)."""
    row = (
        ConnectionPrice.objects.filter(connection_id=connection_id, country__in=[country, ""])
        .order_by("-country")  # the country's own price before the catch-all ""
        .values_list("price", "currency")
        .first()
    )
    return Price(*row) if row else None
