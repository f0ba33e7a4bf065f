"""The shape of request URLs built from ``api_base_url``: its query, and its credentials."""

from __future__ import annotations

import re

__all__ = ["split_query", "with_query", "without_userinfo"]

_URL_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")


def split_query(url: str) -> tuple[str, str]:
    """``api_base_url`` without its ``?query``, and the query (``""`` when none)."""
    root, _, query = url.partition("?")
    return root, query


def with_query(url: str, query: str) -> str:
    """``url`` with the base URL's ``query`` appended (after any query of its own)."""
    if not query:
        return url
    return f"{url}{'&' if '?' in url else '?'}{query}"


def without_userinfo(url: str) -> str | None:
    """``url`` without its ``user:password@``, or None when it has none."""
    if not _URL_USERINFO.match(url):
        return None
    return _URL_USERINFO.sub(r"\1", url, count=1)
