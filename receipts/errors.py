"""From a provider's error to a normalized reason and class.

The error catalog (reasons per provider code, retry advice, end-user explanations) is built in
the provider/error-catalog issue; until then every failure is classed `unknown` with no
reason, which is what the catalog itself answers for a code it does not know.
"""

from __future__ import annotations

from receipts.models import ErrorClass
from receipts.statuses import FAILURE_STATUSES


def classify_error(*, provider: str, status: str, error_code: str) -> tuple[str, str]:
    """(reason, class) for a receipt; both empty when the status is not a failure."""
    if status not in FAILURE_STATUSES:
        return "", ""
    return "", ErrorClass.UNKNOWN.value
