"""SMTP over one persistent connection, reopened only when the relay drops it."""

from __future__ import annotations

import smtplib
import ssl
from urllib.parse import parse_qs, unquote, urlsplit

from distributor.errors import ConfigurationError, TransportError
from distributor.transport.base import Envelope


class SMTPTransport:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        implicit_tls: bool = False,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port = host, port
        self._implicit_tls, self._starttls = implicit_tls, starttls
        self._username, self._password = username, password
        self._timeout = timeout
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        try:
            if self._implicit_tls:
                connection: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    timeout=self._timeout,
                    context=ssl.create_default_context(),
                )
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=self._timeout)
            connection.ehlo()
            if self._starttls:
                connection.starttls(context=ssl.create_default_context())
                connection.ehlo()
            if self._username:
                connection.login(self._username, self._password or "")
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(
                f"cannot connect to the mail relay {self.host}:{self.port}: {exc}", temporary=True
            ) from exc
        return connection

    def send(self, envelope: Envelope) -> str:
        if self._connection is None:
            self._connection = self._connect()
        connection = self._connection
        try:
            code, reply = connection.mail(envelope.sender)
            if code != 250:
                raise self._refused("sender", code, reply)
            code, reply = connection.rcpt(envelope.recipient)
            if code not in (250, 251):
                raise self._refused("recipient", code, reply)
            code, reply = connection.data(envelope.data)
            if code != 250:
                raise self._refused("message", code, reply)
        except TransportError:
            self._reset()
            raise
        except (OSError, smtplib.SMTPException) as exc:
            # The connection died mid-transaction: whether the relay kept the message is unknown.
            self._drop()
            raise TransportError(
                f"connection to {self.host}:{self.port} lost during the transaction: {exc}"
            ) from exc
        return f"{code} {reply.decode('utf-8', 'replace')}"

    @staticmethod
    def _refused(what: str, code: int, reply: bytes) -> TransportError:
        text = reply.decode("utf-8", "replace")
        return TransportError(
            f"relay refused the {what}: {code} {text}", code=code, temporary=400 <= code < 500
        )

    def _reset(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    def close(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.quit()
        except (OSError, smtplib.SMTPException):
            pass
        finally:
            self._drop()


def transport_from_url(url: str, *, timeout: float = 30.0) -> SMTPTransport:
    """smtp://[user:pass@]host[:port][?starttls=true] or smtps://... for implicit TLS."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigurationError(
            f"cannot use the mail relay URL {url!r}: write it as smtp://host:port or smtps://host"
        )
    options = parse_qs(parts.query)
    implicit_tls = parts.scheme == "smtps"
    return SMTPTransport(
        parts.hostname,
        parts.port or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        starttls=options.get("starttls", ["false"])[0].lower() in ("1", "true", "yes"),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
    )
