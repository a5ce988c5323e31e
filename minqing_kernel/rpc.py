"""RPC between services: nameko's, without per-message publisher confirms, with a deadline.

nameko confirms every RPC request and every reply, one broker round trip each way (see
bench/: about a third of the gateway's and intake's CPU under load). An RPC caller
already has the only guarantee that matters, the reply, so confirms add nothing but
cost; what the caller does need is a deadline, which nameko 2's RpcProxy lacks (a call
to a stopped service would wait forever). Events, which must not be lost, go through
the outbox and its confirmed relay, never through here.
"""
from __future__ import annotations

import logging
import sys

import amqp.exceptions
import eventlet
import kombu.exceptions
import kombu.serialization
from nameko.amqp.publish import Publisher
from nameko.exceptions import UnserializableValueError, serialize
from nameko.rpc import Responder, Rpc, RpcConsumer, RpcProxy

from minqing_kernel import _nameko  # noqa: F401  (fixes applied on import)
from minqing_kernel.errors import Unavailable

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 10.0
# What publishing a request raises when RabbitMQ is away or restarting.
BROKER_ERRORS = (kombu.exceptions.OperationalError, amqp.exceptions.ConnectionError,
                 ConnectionError)


class _UnconfirmedPublisher(Publisher):
    use_confirms = False


class _Responder(Responder):
    publisher_cls = _UnconfirmedPublisher

    def send_response(self, result, exc_info):
        """nameko's, but the payload is serialised once, not twice (nameko dumps it to
        check it can, then the producer dumps it again to send it)."""
        error = serialize(exc_info[1]) if exc_info is not None else None
        content_type = self.message.properties["content_type"]
        serializer = kombu.serialization.registry.type_to_name[content_type]
        try:
            content_type, encoding, body = kombu.serialization.dumps(
                {"result": result, "error": error}, serializer)
        except Exception:
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))  # always serialisable
            result = None
            content_type, encoding, body = kombu.serialization.dumps(
                {"result": None, "error": error}, serializer)
        self.publisher_cls(self.amqp_uri, ssl=self.ssl, login_method=self.login_method).publish(
            body, content_type=content_type, content_encoding=encoding,
            exchange=self.exchange, routing_key=self.message.properties["reply_to"],
            correlation_id=self.message.properties.get("correlation_id"))
        return result, exc_info


class _RpcConsumer(RpcConsumer):
    def handle_result(self, message, result, exc_info):
        # nameko's, with our responder: the reply is sent, then the request acked.
        from nameko.constants import (
            AMQP_SSL_CONFIG_KEY,
            AMQP_URI_CONFIG_KEY,
            DEFAULT_SERIALIZER,
            LOGIN_METHOD_CONFIG_KEY,
            SERIALIZER_CONFIG_KEY,
        )
        from nameko.rpc import get_rpc_exchange

        config = self.container.config
        responder = _Responder(config[AMQP_URI_CONFIG_KEY], get_rpc_exchange(config),
                               config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
                               message, ssl=config.get(AMQP_SSL_CONFIG_KEY),
                               login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        try:
            result, exc_info = responder.send_response(result, exc_info)
        except BROKER_ERRORS as exc:
            # The broker went away between request and reply: the request stays unacked
            # and comes again (which is why submissions carry their id), the caller
            # hears a timeout. Letting this escape would stop the whole service.
            log.warning("could not send the reply to %s (%s); the request will be "
                        "redelivered", message.delivery_info.get("routing_key"), exc)
            return result, exc_info
        self.queue_consumer.ack_message(message)
        return result, exc_info


class _Rpc(Rpc):
    rpc_consumer = _RpcConsumer()


rpc = _Rpc.decorator


class _Deadlined:
    def __init__(self, proxy, service: str, timeout: float):
        self._proxy, self._service, self._timeout = proxy, service, timeout

    def __getattr__(self, method: str):
        remote = getattr(self._proxy, method)

        def call(*args, **kwargs):
            try:
                with eventlet.Timeout(self._timeout):
                    return remote(*args, **kwargs)
            except BROKER_ERRORS as exc:
                raise Unavailable.of("kernel.broker-unavailable",
                                     code="broker-unavailable") from exc
            except eventlet.Timeout:
                raise Unavailable.of("kernel.service-timeout", service=self._service,
                                     timeout=self._timeout, code="service-timeout") from None
        return call


class RemoteService(RpcProxy):
    """`intake = RemoteService("intake")`: RPC to another service, with a deadline."""

    def __init__(self, target_service: str, **options):
        options.setdefault("use_confirms", False)
        super().__init__(target_service, **options)

    def get_dependency(self, worker_ctx):
        timeout = float(self.container.config.get("RPC_TIMEOUT_S", DEFAULT_TIMEOUT_S))
        return _Deadlined(super().get_dependency(worker_ctx), self.target_service, timeout)
