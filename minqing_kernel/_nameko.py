"""Two fixes to nameko 2.14.1, applied when the kernel is imported. Both are bugs or
costs that the fault tests and the bench found; the rest of nameko is used as it is.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import nameko.amqp.publish
import nameko.messaging
from kombu import Connection
from kombu.pools import producers
from nameko.amqp.publish import DEFAULT_TRANSPORT_OPTIONS

log = logging.getLogger(__name__)

_connections: dict = {}


@contextmanager
def _get_producer(amqp_uri, confirms=True, ssl=None, login_method=None,
                  transport_options=None):
    """nameko's get_producer builds a kombu Connection object for every message it
    publishes (URL parsing, environment detection: ~3% of a service's CPU under load).
    The pooled producer it then takes is keyed by the connection's parameters, so one
    Connection object per parameter set is equivalent, and cheap."""
    options = dict(transport_options or DEFAULT_TRANSPORT_OPTIONS, confirm_publish=confirms)
    key = (amqp_uri, repr(ssl), login_method, tuple(sorted(options.items())))
    conn = _connections.get(key)
    if conn is None:
        conn = _connections[key] = Connection(amqp_uri, transport_options=options, ssl=ssl,
                                              login_method=login_method)
    with producers[conn].acquire(block=True) as producer:
        yield producer



nameko.amqp.publish.get_producer = _get_producer


# nameko acks and requeues messages ignoring amqp's ConnectionError but not the socket's
# own (ConnectionResetError when RabbitMQ restarts): the exception escapes a worker and
# kills the whole service. A message whose connection is gone is redelivered by the
# broker anyway, so there is nothing to do but say so.
def _tolerating_a_lost_connection(method, verb: str):
    def wrapper(self, message):
        try:
            method(self, message)
        except OSError as exc:
            log.warning("could not %s a message, its connection is gone (%s); the broker "
                        "will deliver it again", verb, exc)
    return wrapper


nameko.messaging.QueueConsumer.ack_message = _tolerating_a_lost_connection(
    nameko.messaging.QueueConsumer.ack_message, "ack")
nameko.messaging.QueueConsumer.requeue_message = _tolerating_a_lost_connection(
    nameko.messaging.QueueConsumer.requeue_message, "requeue")
