"""Country names for ISO 3166 alpha-2 codes (pycountry's ISO data: the phone-number package
this project uses is the lite build, which has no names)."""

from __future__ import annotations

from functools import cache

import pycountry


@cache
def country_name(code: str) -> str:
    """'FR' → 'France'; the code itself when ISO 3166 has no such country (e.g. 'XK')."""
    country = pycountry.countries.get(alpha_2=code.upper()) if len(code) == 2 else None
    if country is None:
        return code
    # The common name where ISO's official one is formal ("Korea, Republic of" → "South Korea"
    # is not in the data; common_name covers e.g. Taiwan, Bolivia).
    return str(getattr(country, "common_name", None) or country.name)
