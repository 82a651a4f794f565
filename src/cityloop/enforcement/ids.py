"""Check characters of Chinese identity numbers (pure, no database).

GB 11643-1999 公民身份号码: 17 digits + a check character (ISO 7064 MOD 11-2, 'X' for 10).
GB 32100-2015 法人和其他组织统一社会信用代码: 17 characters + a check character (MOD 31 over
the 31-character set without I, O, Z, S, V).
"""

from __future__ import annotations

from datetime import date

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def id_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def id_number_problem(value: str) -> str | None:
    """None when `value` is a valid 18-character 公民身份号码, else what is wrong."""
    if (
        len(value) != 18
        or not value[:17].isdigit()
        or not (value[17].isdigit() or value[17] in "Xx")
    ):
        return "an ID number has 17 digits and a check character (a digit or X)"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "the birth date in the ID number (digits 7-14) is not a date"
    if id_check_char(value[:17]) != value[17].upper():
        return "the ID number's check character is wrong (GB 11643)"
    return None


def credit_check_char(first17: str) -> str:
    total = sum(CREDIT_CHARSET.index(c) * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_CHARSET[(31 - total % 31) % 31]


def credit_code_problem(value: str) -> str | None:
    """None when `value` is a valid 统一社会信用代码, else what is wrong."""
    if len(value) != 18 or any(c not in CREDIT_CHARSET for c in value):
        return (
            "a unified social credit code has 18 characters from 0-9 and A-Y without I, O, Z, S, V"
        )
    if credit_check_char(value[:17]) != value[17]:
        return "the credit code's check character is wrong (GB 32100)"
    return None


def mask_id_number(value: str) -> str:
    """350203199001011234 → 3502**********1234."""
    return value[:4] + "*" * 10 + value[-4:]
