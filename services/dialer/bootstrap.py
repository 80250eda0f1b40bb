"""The composition root: the one place that picks and wires the dialer's concrete adapters."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from dialer.adapters.dial_log import DialLog
from dialer.adapters.kafka_events import KafkaCallEvents
from dialer.adapters.mongo_attempts import MongoAttemptStore
from dialer.adapters.prometheus_metrics import PrometheusCallMetrics
from dialer.adapters.simulated_provider import SimulatedProvider
from dialer.adapters.sip_provider import SipOptions, SipProvider
from dialer.config import Settings
from dialer.domain.simulation import CallSimulator, parse_mix
from dialer.entrypoints.consumer import CallRequestConsumer
from dialer.handlers import Dialer, DialPolicy
from dialer.ports import TelephonyProvider
from shared.kafka import CONSUMER_METADATA_MAX_AGE_MS
from shared.mongo import Document, database, make_client
from shared.runner import instance_name
from shared.topics import Topic

SERVICE = "dialer"


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_provider(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now, sip_log_level: int = 1
) -> TelephonyProvider:
    """The telephony provider the deployment chose (`DIALER_PROVIDER`)."""
    if settings.provider == "sip":
        return SipProvider(
            SipOptions(
                bind_host=settings.sip_bind_host,
                bind_port=settings.sip_bind_port,
                trunk_uri=settings.sip_trunk_uri,
                caller_id=settings.sip_caller_id,
                max_calls=settings.sip_max_calls,
                no_response_seconds=settings.sip_no_response_seconds,
                log_level=sip_log_level,
            ),
            clock=clock,
        )
    simulated = SimulatedProvider(
        CallSimulator(settings.sim_seed, parse_mix(settings.sim_outcomes)),
        time_scale=settings.sim_time_scale,
        clock=clock,
    )
    if settings.sim_dial_log:
        name = instance_name(SERVICE, settings)
        return DialLog(simulated, settings.sim_dial_log, instance=name, clock=clock)
    return simulated


@dataclass
class DialerRuntime:
    """Everything one running dialer holds; started and stopped by the app's lifespan."""

    settings: Settings
    name: str
    mongo: AsyncMongoClient[Document]
    events: KafkaCallEvents
    provider: TelephonyProvider
    dialer: Dialer
    consumer: CallRequestConsumer
    kafka_consumer: AIOKafkaConsumer


def build_runtime(settings: Settings) -> DialerRuntime:
    infra = settings.infra
    name = instance_name(SERVICE, settings)
    mongo = make_client(infra, name)
    store = MongoAttemptStore(database(mongo, infra), instance=name)
    events = KafkaCallEvents(infra, name)
    provider = build_provider(settings)
    # With SIP, PJSIP's own call limit caps how many requests are taken at once: a request waiting for a
    # free SIP call would otherwise count against its time limits while it has not even been dialed.
    max_active = settings.max_active_calls
    if settings.provider == "sip":
        max_active = min(max_active, settings.sip_max_calls)
    dialer = Dialer(
        store=store,
        events=events,
        provider=provider,
        metrics=PrometheusCallMetrics(),
        clock=utc_now,
        new_token=lambda: uuid.uuid4().hex,
        policy=DialPolicy(ring_timeout_seconds=settings.ring_timeout_seconds),
    )
    kafka_consumer = AIOKafkaConsumer(
        bootstrap_servers=infra.kafka_bootstrap,
        group_id=settings.consumer_group,
        client_id=name,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.poll_max_records,
        # Generous: while draining on SIGTERM the consumer keeps polling with its partitions paused.
        max_poll_interval_ms=int(max(300.0, settings.drain_seconds + 60.0) * 1000),
        metadata_max_age_ms=CONSUMER_METADATA_MAX_AGE_MS,
    )
    consumer = CallRequestConsumer(
        kafka_consumer,
        Topic.CALL_REQUESTS.name_with(infra.topic_prefix),
        dialer,
        max_active=max_active,
        poll_max_records=settings.poll_max_records,
        commit_interval_seconds=settings.commit_interval_seconds,
    )
    return DialerRuntime(settings, name, mongo, events, provider, dialer, consumer, kafka_consumer)
