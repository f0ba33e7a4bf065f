"""Redaction: every form of every secret goes, whatever the order the secrets come in."""

from __future__ import annotations

import base64
import itertools

import pytest

from openai_chatapi._redact import REDACTED, redact_text, with_encodings

LONG = "sk-test+KEY/with=odd-chars-8d7c6b5a"


@pytest.mark.parametrize("order", list(itertools.permutations(["sk-test", LONG, "odd-chars"])))
def test_a_secret_inside_another_does_not_break_the_longer_match(order: tuple[str, ...]) -> None:
    # A short registered key replaced first used to leave the rest of the long one in clear.
    text = f"bad key {LONG} (retry)"
    assert redact_text(text, order) == f"bad key {REDACTED} (retry)"


def test_overlapping_secrets_become_one_placeholder() -> None:
    text = "x abcdefghijklmnop y"
    for order in (["abcdefghij", "ghijklmnop"], ["ghijklmnop", "abcdefghij"]):
        assert redact_text(text, order) == f"x {REDACTED} y"


def test_every_occurrence_and_escaped_forms_are_replaced() -> None:
    text = f"{LONG} and {LONG.replace('+', '%2B').replace('/', '%2F').replace('=', '%3D')}"
    assert redact_text(text, [LONG]) == f"{REDACTED} and {REDACTED}"


def test_pieces_left_by_a_cut_at_either_end_are_replaced() -> None:
    assert redact_text(f"key: {LONG[:12]}", [LONG]) == f"key: {REDACTED}"
    assert redact_text(f"{LONG[-12:]} was echoed", [LONG]) == f"{REDACTED} was echoed"
    assert redact_text("no secret here", [LONG]) == "no secret here"


def test_text_around_the_secrets_is_kept_exactly() -> None:
    text = "a sk-one-123456 b sk-two-654321 c"
    assert redact_text(text, ["sk-two-654321", "sk-one-123456", ""]) == (
        f"a {REDACTED} b {REDACTED} c"
    )


@pytest.mark.parametrize("prefix", ["", "Bearer ", "Basic x", "user:", "ab"])
def test_a_secret_base64_encoded_inside_longer_text_is_scrubbed(prefix: str) -> None:
    # A proxy echoing "Authorization: Bearer <key>" shows base64 of the whole header value.
    encoded = base64.b64encode((prefix + LONG).encode()).decode()
    text = redact_text(f"echo: {encoded}", with_encodings([LONG]))
    assert REDACTED in text
    leftover = text.replace("echo: ", "").replace(REDACTED, "")
    # What is left may encode the prefix and at most two bytes of the secret at either end.
    assert len(leftover) <= len(base64.b64encode(prefix.encode())) + 8, text


def test_a_secret_base64_encoded_with_text_after_it_is_scrubbed() -> None:
    encoded = base64.b64encode((LONG + "\n--end").encode()).decode()
    text = redact_text(encoded, with_encodings([LONG]))
    assert text.startswith(REDACTED) and len(text) <= len(REDACTED) + 12, text
