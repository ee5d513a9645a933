"""Text as both agents and the evaluation see it: words without punctuation, numbers as words.

Used by the scripted brains (saying numbers the way a speech synthesiser reads them), the
checks (comparing what was said with bank data) and the metrics (word error rate).
"""

from __future__ import annotations

import re

__all__ = ["NUMBER_VALUES", "TEENS", "TENS", "UNITS", "number_words", "words"]

UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = [
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
    "sixteen", "seventeen", "eighteen", "nineteen",
]  # fmt: skip
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

# The value of each number word: "zero".."nineteen" and "twenty".."ninety".
NUMBER_VALUES: dict[str, int] = {w: i for i, w in enumerate(UNITS + TEENS)} | {
    w: 10 * i for i, w in enumerate(TENS) if w
}


def words(text: str) -> str:
    """Lower case, punctuation removed (apostrophes dropped), single spaces."""
    text = text.casefold().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def number_words(n: int) -> str:
    """0..999999 in words, as a speech synthesiser reads a number: 342 -> 'three hundred forty two'."""
    if n < 10:
        return UNITS[n]
    if n < 20:
        return TEENS[n - 10]
    if n < 100:
        tens, unit = divmod(n, 10)
        return TENS[tens] + (f" {UNITS[unit]}" if unit else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{UNITS[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    return f"{number_words(thousands)} thousand" + (f" {number_words(rest)}" if rest else "")
