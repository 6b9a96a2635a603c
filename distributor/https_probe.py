"""Whether an address answers over HTTPS with a certificate receivers trust: the one-click
unsubscribe link must, or receivers will not use it."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from distributor.deliverability import CheckState

PROBE_TIMEOUT_SECONDS = 5.0


def probe_https(
    url: str, *, timeout: float = PROBE_TIMEOUT_SECONDS, context: ssl.SSLContext | None = None
) -> tuple[CheckState, str]:
    """Whether the address answers over HTTPS with a certificate receivers trust."""
    if urlsplit(url).scheme != "https":
        raise ValueError(f"{url!r} is not an https:// address")
    request = urllib.request.Request(  # noqa: S310 - https only, checked above
        url, method="GET", headers={"User-Agent": "distributor"}
    )
    try:
        with urllib.request.urlopen(  # noqa: S310 - https only, checked above
            request, timeout=timeout, context=context or ssl.create_default_context()
        ) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except urllib.error.URLError as exc:
        return _unreachable(url, exc.reason)
    except (OSError, ValueError) as exc:
        return _unreachable(url, exc)
    if status >= 500:
        return CheckState.PROBLEM, f"answers over HTTPS, but with HTTP {status}: a server error"
    return CheckState.OK, f"answers over HTTPS with a trusted certificate (HTTP {status})"


def _unreachable(url: str, reason: object) -> tuple[CheckState, str]:
    host = urlsplit(url).hostname
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (
            CheckState.PROBLEM,
            f"its certificate is not trusted ({reason.verify_message}): receivers will not "
            "use the link; install a certificate from a public authority",
        )
    if isinstance(reason, socket.gaierror):
        return CheckState.NOT_CHECKED, f"not checked: {host} could not be resolved (offline?)"
    if isinstance(reason, TimeoutError | socket.timeout):
        return CheckState.NOT_CHECKED, f"not checked: {host} did not answer in time (offline?)"
    if isinstance(reason, ConnectionRefusedError):
        return CheckState.PROBLEM, f"{host} refused the connection: is the web app running?"
    return CheckState.PROBLEM, f"not reachable over HTTPS: {reason}"
