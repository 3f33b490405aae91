"""Credentials in Redis URLs: hidden when a URL is shown, split off when it is passed on
(store layer; imports nothing of the package, does no I/O).

A URL may carry a password (``redis://user:secret@host:6379/0``, or ``?password=`` in the
query). `redact_url` is what every message, log line, report and CLI output shows instead
(``redis://user:***@host:6379/0``); `split_credentials` gives the URL without its user and
password plus the two, so that a child process gets the URL on its command line and the
password through its environment or a password file (never visible in ``ps``).
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

__all__ = ["MASK", "redact_url", "split_credentials"]

MASK = "***"
_QUERY_PASSWORD = re.compile(r"(^|&)password=[^&]*")


def _join(parsed: SplitResult, netloc: str, query: str) -> str:
    # by hand: urlunsplit drops the // of schemes it does not know (unix://)
    return (
        f"{parsed.scheme}://{netloc}{parsed.path}"
        + (f"?{query}" if query else "")
        + (f"#{parsed.fragment}" if parsed.fragment else "")
    )


def redact_url(url: str) -> str:
    """`url` with its password replaced by ``***`` (user, host and path kept). A string with
    an ``@`` that is not a well-formed URL's user part (``user:pw@host``, no scheme) has
    everything before its last ``@`` masked: when in doubt, hide."""
    try:
        parsed = urlsplit(url)
    except ValueError:
        parsed = None
    if parsed is None or ("@" in url and "@" not in parsed.netloc):
        return MASK + url[url.rfind("@") :] if "@" in url else url
    netloc, query = parsed.netloc, parsed.query
    changed = False
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, sep, _secret = userinfo.partition(":")
        if sep:
            netloc, changed = f"{user}:{MASK}@{host}", True
    if _QUERY_PASSWORD.search(query):
        query, changed = _QUERY_PASSWORD.sub(rf"\1password={MASK}", query), True
    return _join(parsed, netloc, query) if changed else url


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(`url` without user and password, the username, the password); raises ValueError for
    a string that does not parse as a URL."""
    parsed = urlsplit(url)
    netloc, query = parsed.netloc, parsed.query
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, sep, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if sep else None
    if _QUERY_PASSWORD.search(query):
        pairs = parse_qsl(query, keep_blank_values=True)
        password = next((v for k, v in pairs if k == "password"), password)
        query = "&".join(part for part in query.split("&") if not part.startswith("password="))
    if username is None and password is None:
        return url, None, None
    return _join(parsed, netloc, query), username, password
