"""The scripted brains' language helpers on recogniser-style text (lower case, homophones)."""

import pytest

from dualagent.realtime.local.brains import language as lang


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("four for one seven", "4417"),
        ("my card ends in four four one seven", "4417"),
        ("it ends in 4 4 1 7", "4417"),
        ("the last four are four four one seven thank you", "4417"),
        ("oh nine won two", "0912"),
        ("one two three four five six", "3456"),  # the last four of a longer run
        ("ends in two three and then four five six seven", "4567"),
    ],
)
def test_parse_digit_run_hears_digits(text: str, digits: str) -> None:
    assert lang.parse_digit_run(text) == digits


@pytest.mark.parametrize(
    "text",
    [
        "looking for two",
        "i have to go for two hours",
        "won too tree for",  # only homophones: not a number someone read out
        "one two three",  # too short
        "",
    ],
)
def test_parse_digit_run_ignores_ordinary_words(text: str) -> None:
    assert lang.parse_digit_run(text) is None


def test_parse_digit_run_other_lengths() -> None:
    assert lang.parse_digit_run("code one two three four five six", length=6) == "123456"
    assert lang.parse_digit_run("say nine nine", length=2) == "99"


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("march fourteenth nineteen fifty eight", "1958-03-14"),
        ("my date of birth is march fourteen nineteen fifty eight", "1958-03-14"),
        ("It's March 14, 1958.", "1958-03-14"),
        ("july first two thousand five", "2005-07-01"),
        ("december thirty first nineteen ninety nine", "1999-12-31"),
        ("june twenty second nineteen ninety", "1990-06-22"),
        ("may twenty second nineteen oh five", "1905-05-22"),
        ("january third two thousand and ten", "2010-01-03"),
        ("born on the march the fourteenth of nineteen fifty eight", "1958-03-14"),
    ],
)
def test_parse_date_of_spoken_birthdays(text: str, iso: str) -> None:
    assert lang.parse_date(text) == iso


@pytest.mark.parametrize(
    "text",
    [
        "i may be late",
        "february thirtieth nineteen eighty",  # no such day
        "march fourteenth",  # no year
        "i lost my card",
    ],
)
def test_parse_date_rejects_non_dates(text: str) -> None:
    assert lang.parse_date(text) is None


@pytest.mark.parametrize(
    "iso",
    [
        "1958-03-14",
        "2005-07-01",
        "1999-12-31",
        "1980-01-30",
        "2001-11-21",
        "1905-05-09",
        "2012-02-29",
    ],
)
def test_say_date_is_heard_back(iso: str) -> None:
    assert lang.parse_date(lang.say_date(iso)) == iso


def test_say_date_reads_like_a_person() -> None:
    assert lang.say_date("1958-03-14") == "March fourteenth nineteen fifty eight"
    assert lang.say_date("2005-07-01") == "July first two thousand five"
    assert lang.say_date("1999-12-31") == "December thirty first nineteen ninety nine"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("yes my name is sarah johnson", "Sarah Johnson"),
        ("this is nancy wilson calling", "Nancy Wilson"),
        ("My name is Nancy Wilson and my date of birth is March fourteenth", "Nancy Wilson"),
        ("it's john smith", "John Smith"),
    ],
)
def test_parse_full_name(text: str, name: str) -> None:
    assert lang.parse_full_name(text) == name


@pytest.mark.parametrize(
    "text",
    [
        "I'm afraid I've lost my card",
        "my name is nancy",  # a first name alone is not a full name
        "i am calling about my card",
        "hi this is the bank",
        "i'm sorry i lost it",
        "i'm not sure",
    ],
)
def test_parse_full_name_rejects_non_names(text: str) -> None:
    assert lang.parse_full_name(text) is None


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (42, "forty two"),
        (100, "one hundred"),
        (342, "three hundred forty two"),
        (1000, "one thousand"),
        (2005, "two thousand five"),
    ],
)
def test_number_words(n: int, words: str) -> None:
    assert lang.number_words(n) == words


@pytest.mark.parametrize(
    ("year", "words"),
    [
        (1958, "nineteen fifty eight"),
        (2005, "two thousand five"),
        (1900, "nineteen hundred"),
        (1905, "nineteen oh five"),
        (2023, "twenty twenty three"),
    ],
)
def test_say_year_and_back(year: int, words: str) -> None:
    assert lang.say_year(year) == words
    assert lang.parse_year(words.split()) == year


def test_say_digits_and_money() -> None:
    assert lang.say_digits("4417") == "four four one seven"
    assert lang.say_digits("12-34") == "one two three four"
    assert lang.parse_digit_run(lang.say_digits("0912")) == "0912"
    assert lang.say_money(342.99) == "three hundred forty two dollars and ninety nine cents"
    assert lang.say_money(1) == "one dollar"
    assert lang.say_money(1.01) == "one dollar and one cent"
    assert lang.say_money(-25) == "twenty five dollars"
    assert lang.ordinal_words(23) == "twenty third"


@pytest.mark.parametrize(
    "text",
    [
        "yes",
        "Yes, that's right.",
        "yeah that is correct",
        "sure",
        "okay go ahead",
        "correct",
        "yes please",
    ],
)
def test_is_yes(text: str) -> None:
    assert lang.is_yes(text)
    assert not lang.is_no(text)


@pytest.mark.parametrize(
    "text",
    [
        "no",
        "No, that's wrong.",
        "nope",
        "that's not correct",
        "that is incorrect",
        "not right",
        "that's not right",
    ],
)
def test_is_no(text: str) -> None:
    assert lang.is_no(text)
    assert not lang.is_yes(text)


@pytest.mark.parametrize("text", ["i don't know", "maybe later", ""])
def test_neither_yes_nor_no(text: str) -> None:
    assert not lang.is_yes(text)
    assert not lang.is_no(text)


def test_normalize_and_has_any() -> None:
    assert lang.normalize("Hello,   WORLD! It's 4pm.") == "hello world it's 4pm"
    assert lang.has_any("I lost my card.", ["lost"])
    assert not lang.has_any("closets", ["lost"])  # whole words only
