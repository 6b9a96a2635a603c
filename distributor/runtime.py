"""Wiring: the long-lived objects a process builds once from its settings."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from jinja2 import Environment
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from distributor.acting import acting_info
from distributor.actors import SYSTEM_ACTOR, Actor
from distributor.bounces.reputation import ReputationLimits
from distributor.clock import Clock, SystemClock
from distributor.database import make_engine, make_session_factory
from distributor.engine.batch import BatchJob, BuildMessage, SendingParts
from distributor.engine.claims import SendSnapshot
from distributor.engine.dbclock import DatabaseClock, ServerClock
from distributor.engine.dispatch import BatchRef
from distributor.engine.heartbeats import process_name
from distributor.engine.pacing import Limits, Pacer, PacingStore
from distributor.engine.retries import RetryPolicy
from distributor.engine.tick import SchedulerPolicy
from distributor.mail.dkim import DkimSigner
from distributor.mail.unsubscribe import UnsubscribeLinks, UnsubscribeTokens
from distributor.mail.verp import VerpAddresses
from distributor.message import MessageBuilder, Sender
from distributor.releases.content import ReleaseContent, content_of
from distributor.rendering import RenderSetup, make_environment, prepare_release
from distributor.rendering.announcements import Announcement
from distributor.rendering.brand import BrandColours
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.rendering.session import session_info
from distributor.send_wording import correction_of, wording_of
from distributor.settings import Settings
from distributor.transport import MailTransport, transport_from_url
from distributor.transport.async_smtp import AsyncSMTPConnection, RelayAddress
from distributor.transport.smtp import relay_address_from_url
from distributor.unsubscribes import TEST_COPY_SEND_ID, test_copy_tokens

# Builders kept per process: a worker sends a send's batches one after another, and each
# finds the release rendered and its MIME encoded by the first.
KEPT_BUILDERS = 2


@dataclass
class Runtime:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    # None: the database server's own clock decides (tests of pure logic pass another).
    database_clock_override: DatabaseClock | None = None
    # Whose name the sessions act in: a person for a command or a request, else the system.
    actor: Actor = SYSTEM_ACTOR
    _builders: OrderedDict[tuple[object, ...], MessageBuilder] = field(
        default_factory=OrderedDict, repr=False
    )

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        factory = make_session_factory(self.engine)
        # Core functions given only a session check releases against these templates, and
        # record what they change in the name of the session's actor.
        factory.configure(info={**session_info(self.render_setup), **acting_info(self.actor)})
        return factory

    def act_as(self, actor: Actor) -> None:
        """Open every later session in `actor`'s name."""
        self.actor = actor
        self.sessions.configure(info={**session_info(self.render_setup), **acting_info(actor)})

    @cached_property
    def templates(self) -> Environment:
        return make_environment(self.settings.effective_templates_dir)

    @cached_property
    def render_setup(self) -> RenderSetup:
        return RenderSetup(
            environment=self.templates,
            colours=BrandColours(
                primary=self.settings.brand_primary_colour,
                accent=self.settings.brand_accent_colour,
            ),
            content_id_domain=self.settings.message_id_domain,
        )

    @property
    def sender(self) -> Sender:
        return Sender(
            address=self.settings.from_address,
            display_name=self.settings.from_name,
            message_id_domain=self.settings.message_id_domain,
            reply_to=self.settings.effective_reply_to,
            list_id=self.settings.effective_list_id,
        )

    @cached_property
    def unsubscribe_links(self) -> UnsubscribeLinks:
        return UnsubscribeLinks(
            tokens=UnsubscribeTokens(self.settings.secret_key),
            base_url=self.settings.effective_public_base_url,
            mailto_domain=self.settings.effective_unsubscribe_domain,
        )

    @cached_property
    def test_copy_unsubscribe_links(self) -> UnsubscribeLinks:
        """Links of preview and test copies: the unsubscribe endpoint knows them for test
        links and changes nothing."""
        return UnsubscribeLinks(
            tokens=test_copy_tokens(self.settings.secret_key),
            base_url=self.settings.effective_public_base_url,
            mailto_domain=self.settings.effective_unsubscribe_domain,
        )

    @cached_property
    def bounces(self) -> VerpAddresses:
        return VerpAddresses(
            secret=self.settings.secret_key, domain=self.settings.effective_bounce_domain
        )

    @cached_property
    def dkim(self) -> DkimSigner | None:
        return DkimSigner.from_settings(self.settings)

    @cached_property
    def relay(self) -> RelayAddress:
        return relay_address_from_url(
            self.settings.smtp_url, timeout=self.settings.smtp_timeout_seconds
        )

    def connect_to_relay(self) -> AsyncSMTPConnection:
        """One connection for the sending lanes; opened by the caller, on its event loop."""
        return AsyncSMTPConnection(self.relay, local_name=self.settings.sender_domain)

    def open_transport(self) -> MailTransport:
        return transport_from_url(
            self.settings.smtp_url, timeout=self.settings.smtp_timeout_seconds
        )

    @property
    def database_clock(self) -> DatabaseClock:
        if self.database_clock_override is not None:
            return self.database_clock_override
        return ServerClock(self.engine.dialect.name)

    @cached_property
    def process_identity(self) -> str:
        """This process on leases and claims: host, pid and a nonce against reused pids."""
        return f"{process_name('worker')}:{secrets.token_hex(3)}"

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial=timedelta(seconds=self.settings.retry_initial_seconds),
            window=timedelta(seconds=self.settings.retry_window_seconds),
        )

    @cached_property
    def pacing_limits(self) -> Limits:
        return Limits(
            rate_per_second=self.settings.rate_per_second,
            max_connections=self.settings.max_connections,
            domains=self.settings.domain_limits,
            daily_quota=self.settings.daily_quota,
        )

    def pacing_store(self) -> PacingStore | None:
        """A new handle on the store the installation's limits are shared through: Redis
        beside a Redis broker, a file under the data folder beside the embedded one."""
        kind = self.settings.pacing_store_kind
        if kind == "redis":
            from distributor.engine.pacing_redis import RedisPacingStore

            return RedisPacingStore(self.settings.broker_url, installation=self.settings.queue_name)
        if kind == "local":
            from distributor.engine.pacing_local import LocalPacingStore

            return LocalPacingStore(self.settings.pacing_store_path)
        return None

    @cached_property
    def pacer(self) -> Pacer:
        """This process's pacer, made when it first sends."""
        return Pacer(self.pacing_limits, self.pacing_store())

    def sending_parts(self, *, should_stop: Callable[[], bool] = lambda: False) -> SendingParts:
        return SendingParts(
            sessions=self.sessions,
            engine=self.engine,
            database_clock=self.database_clock,
            local_clock=self.clock,
            make_builder=self.make_builder,
            retry=self.retry_policy,
            relay_first_wait=timedelta(seconds=self.settings.relay_backoff_seconds),
            owner=self.process_identity,
            should_stop=should_stop,
            pacer=self.pacer,
        )

    def batch_job(self, send_id: int, batch_no: int) -> BatchJob:
        # Leave room inside the task's time limit for the message in flight to finish.
        budget = self.settings.task_time_limit_seconds - 2 * self.settings.smtp_timeout_seconds
        return BatchJob(
            batch=BatchRef(send_id, batch_no),
            claim_chunk=self.settings.claim_chunk,
            max_wait=timedelta(seconds=self.settings.arm_lead_seconds + 5),
            lease=timedelta(seconds=self.settings.lease_seconds),
            deadline=time.monotonic() + max(budget, 1.0),
        )

    def message_builder(
        self,
        content: ReleaseContent,
        *,
        send_id: int,
        notice: EmbargoNotice | None,
        test: bool = False,
        announcement: Announcement | None = None,
        correction: str | None = None,
    ) -> MessageBuilder:
        """A builder for one send (or, with `test`, for preview and test copies, whose
        unsubscribe links suppress nobody)."""
        prepared = prepare_release(
            content,
            setup=self.render_setup,
            notice=notice,
            test=test,
            announcement=announcement,
            correction=correction,
        )
        return MessageBuilder(
            rendered=prepared,
            sender=self.sender,
            send_id=TEST_COPY_SEND_ID if test else send_id,
            clock=self.clock,
            unsubscribe=self.test_copy_unsubscribe_links if test else self.unsubscribe_links,
            bounces=self.bounces,
            dkim=self.dkim,
        )

    def builder_for(self, snapshot: SendSnapshot) -> MessageBuilder:
        """The send's builder, made once per process for as long as its release is unchanged.

        A public send's deliveries are claimed only once its embargo has passed (see
        claims.py), so its messages are built after the lift and carry no embargo banner,
        whatever the clock of the process says. A pre-brief goes out before the release's
        embargo, so it carries the banner; so do previews and test copies.
        """
        content = content_of(snapshot.release)
        notice, announcement = wording_of(snapshot)
        correction = correction_of(snapshot)
        key = (snapshot.send_id, content, notice)
        builder = self._builders.get(key)
        if builder is None:
            builder = self.message_builder(
                content,
                send_id=snapshot.send_id,
                notice=notice,
                announcement=announcement,
                correction=correction,
            )
            self._builders[key] = builder
            while len(self._builders) > KEPT_BUILDERS:
                self._builders.popitem(last=False)
        return builder

    def make_builder(self, snapshot: SendSnapshot) -> BuildMessage:
        builder = self.builder_for(snapshot)
        builder.prepare_every_variant()  # cached: only the process's first batch pays
        return builder.build_message

    @property
    def scheduler_policy(self) -> SchedulerPolicy:
        return SchedulerPolicy(
            arm_lead=timedelta(seconds=self.settings.arm_lead_seconds),
            redispatch_after=timedelta(seconds=self.settings.redispatch_after_seconds),
            max_lateness=timedelta(seconds=self.settings.max_lateness),
            retry_window=timedelta(seconds=self.settings.retry_window_seconds),
            batch_size=self.settings.batch_size,
            reputation=ReputationLimits(
                bounce_rate=self.settings.bounce_rate_limit,
                complaint_rate=self.settings.complaint_rate_limit,
                minimum_delivered=self.settings.reputation_minimum_delivered,
            ),
        )

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "pacer" in self.__dict__:
            self.pacer.close()
