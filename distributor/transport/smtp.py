"""SMTP over one persistent connection, reopened only when the relay drops it."""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
from urllib.parse import parse_qs, unquote, urlsplit

import idna

from distributor.errors import ConfigurationError, RelayUnavailableError, TransportError
from distributor.transport.async_smtp import RelayAddress
from distributor.transport.base import Envelope
from distributor.transport.wire import NeedsSMTPUTF8, data_payload, envelope_address


def _socket(connection: smtplib.SMTP) -> socket.socket:
    if connection.sock is None:
        raise smtplib.SMTPServerDisconnected("not connected")
    return connection.sock


class _HungUp(Exception):
    """The relay closed the connection before it saw anything of the current message."""

    def __init__(self, detail: str, code: int | None = None) -> None:
        super().__init__(detail)
        self.code = code


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
        connection: smtplib.SMTP | None = None
        try:
            if self._implicit_tls:
                connection = smtplib.SMTP_SSL(
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
            if connection is not None:
                connection.close()
            raise RelayUnavailableError(
                f"cannot connect to the mail relay {self.host}:{self.port}: {exc}",
                code=getattr(exc, "smtp_code", None),
            ) from exc
        return connection

    def connect(self) -> None:
        if self._connection is None:
            self._connection = self._connect()

    def send(self, envelope: Envelope) -> str:
        if self._connection is not None:
            try:
                return self._transaction(self._connection, envelope)
            except _HungUp:
                # The relay closed the connection kept from the last message (an idle timeout,
                # a limit of messages per connection) before this one began: a new connection
                # may safely carry it.
                self._drop()
        self._connection = self._connect()
        try:
            return self._transaction(self._connection, envelope)
        except _HungUp as exc:
            self._drop()
            raise RelayUnavailableError(
                f"the mail relay {self.host}:{self.port} closed the connection: {exc}",
                code=exc.code,
            ) from exc

    def _transaction(self, connection: smtplib.SMTP, envelope: Envelope) -> str:
        smtputf8 = connection.has_extn("smtputf8")
        try:
            sender = envelope_address(envelope.sender, smtputf8=smtputf8)
            recipient = envelope_address(envelope.recipient, smtputf8=smtputf8)
        except (NeedsSMTPUTF8, idna.IDNAError) as exc:
            raise TransportError(f"cannot address the message: {exc}") from exc
        # RFC 6531: declared whenever any envelope address needs it, not only the sender.
        utf8 = smtputf8 and not (sender + recipient).isascii()
        mail = b"MAIL FROM:" + sender + (b" SMTPUTF8" if utf8 else b"")
        commands = [mail + b"\r\n", b"RCPT TO:" + recipient + b"\r\n", b"DATA\r\n"]
        try:
            replies = self._envelope_replies(connection, commands)
        except (OSError, smtplib.SMTPException) as exc:
            # Nothing of the message has gone yet, so a fresh connection may carry it.
            raise _HungUp(str(exc) or type(exc).__name__) from exc
        (mail_code, mail_reply), (rcpt_code, rcpt_reply), (data_code, data_reply) = replies
        if mail_code == 421:  # "service not available, closing transmission channel"
            raise _HungUp(f"{mail_code} {mail_reply.decode('utf-8', 'replace')}", mail_code)
        try:
            if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
                # A relay that took DATA after refusing the envelope gets an empty message
                # with no recipient, which it must discard.
                _socket(connection).sendall(b".\r\n")
                connection.getreply()
            if mail_code != 250:
                raise self._refused("sender", mail_code, mail_reply)
            if rcpt_code not in (250, 251):
                raise self._refused("recipient", rcpt_code, rcpt_reply)
            if data_code != 354:
                raise self._refused("message", data_code, data_reply)
            _socket(connection).sendall(data_payload(envelope.data))
            code, reply = connection.getreply()
            if code != 250:
                raise self._refused("message", code, reply)
        except TransportError:
            self._reset()
            raise
        except (OSError, smtplib.SMTPException) as exc:
            # The connection died or timed out mid-transaction: whether the relay kept the
            # message is unknown. Like an MTA, try again later, accepting a rare duplicate.
            self._drop()
            raise TransportError(
                f"connection to {self.host}:{self.port} lost during the transaction: "
                f"{exc or type(exc).__name__}",
                temporary=True,
            ) from exc
        return f"{code} {reply.decode('utf-8', 'replace')}"

    @staticmethod
    def _envelope_replies(
        connection: smtplib.SMTP, commands: list[bytes]
    ) -> list[tuple[int, bytes]]:
        """MAIL, RCPT and DATA in one write when the relay pipelines, else one at a time."""
        sock = _socket(connection)
        if connection.has_extn("pipelining"):
            sock.sendall(b"".join(commands))
            return [connection.getreply() for _ in commands]
        replies = []
        for command in commands:
            sock.sendall(command)
            replies.append(connection.getreply())
        return replies

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


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
URL_FORM = "write it as smtp://host:port or smtps://host"
KNOWN_OPTIONS = frozenset({"starttls"})


def _without_password(url: str) -> str:
    """The URL as it may appear in an error message or a log: the password masked."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return url
    return url.replace(f":{password}@", ":***@", 1) if password else url


def _is_host_name(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return True
    try:
        # Container networks name hosts with underscores, which DNS names may not hold.
        idna.encode(host.replace("_", "-"), uts46=True)
    except (idna.IDNAError, UnicodeError):
        return False
    return True


def relay_address_from_url(url: str, *, timeout: float = 30.0) -> RelayAddress:
    """smtp://[user:pass@]host[:port][?starttls=true] or smtps://... for implicit TLS."""

    def refused(problem: str) -> ConfigurationError:
        return ConfigurationError(
            f"cannot use the mail relay URL {_without_password(url)!r}: {problem}"
        )

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port that is not a number, or out of range
        raise refused(f"{exc}; {URL_FORM}") from exc
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise refused(URL_FORM)
    if port == 0:
        raise refused(f"port 0 is not a port; {URL_FORM}")
    if not _is_host_name(parts.hostname):
        raise refused(f"{parts.hostname!r} is not a host name or address; {URL_FORM}")
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        # A misspelt option would otherwise be ignored, and mail go out without it.
        raise refused(f"unknown option {unknown[0]!r}; the only option is starttls=true")
    starttls = options.get("starttls", ["false"])[-1].lower()
    if starttls not in TRUE_WORDS + FALSE_WORDS:
        # A typo here must not quietly send mail and credentials in plain text.
        raise refused(f"starttls={starttls!r} is neither true nor false")
    implicit_tls = parts.scheme == "smtps"
    return RelayAddress(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        starttls=starttls in TRUE_WORDS,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
    )


def transport_from_url(url: str, *, timeout: float = 30.0) -> SMTPTransport:
    """A blocking transport over one connection (previews, test sends)."""
    relay = relay_address_from_url(url, timeout=timeout)
    return SMTPTransport(
        relay.host,
        relay.port,
        implicit_tls=relay.implicit_tls,
        starttls=relay.starttls,
        username=relay.username,
        password=relay.password,
        timeout=relay.timeout,
    )
