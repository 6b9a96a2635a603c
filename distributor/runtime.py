"""Wiring: the long-lived objects a process builds once from its settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from jinja2 import Environment
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from distributor.claims import SendSnapshot
from distributor.clock import Clock, SystemClock
from distributor.database import make_engine, make_session_factory
from distributor.message import MessageBuilder, Sender
from distributor.rendering import make_environment, render_release
from distributor.scheduler import SchedulerPolicy
from distributor.sending import BatchJob, BuildMessage
from distributor.settings import Settings
from distributor.transport import MailTransport, transport_from_url


@dataclass
class Runtime:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def templates(self) -> Environment:
        return make_environment(self.settings.effective_templates_dir)

    @property
    def sender(self) -> Sender:
        return Sender(
            address=self.settings.from_address,
            display_name=self.settings.from_name,
            message_id_domain=self.settings.message_id_domain,
        )

    def open_transport(self) -> MailTransport:
        return transport_from_url(
            self.settings.smtp_url, timeout=self.settings.smtp_timeout_seconds
        )

    def batch_job(self, send_id: int, batch_no: int) -> BatchJob:
        return BatchJob(
            send_id=send_id,
            batch_no=batch_no,
            envelope_sender=self.settings.from_address,
            claim_chunk=self.settings.claim_chunk,
            max_wait=timedelta(seconds=self.settings.arm_lead_seconds + 5),
        )

    def make_builder(self, snapshot: SendSnapshot) -> BuildMessage:
        rendered = render_release(self.templates, snapshot.release, embargo_at=snapshot.embargo_at)
        builder = MessageBuilder(
            rendered=rendered, sender=self.sender, send_id=snapshot.send_id, clock=self.clock
        )
        return builder.build

    @property
    def scheduler_policy(self) -> SchedulerPolicy:
        return SchedulerPolicy(
            arm_lead=timedelta(seconds=self.settings.arm_lead_seconds),
            redispatch_after=timedelta(seconds=self.settings.redispatch_after_seconds),
        )

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
