"""Partner platforms' RabbitMQ users: one user per partner, allowed only its own queues.

    python -m tools.partners add NAME       create or update partner NAME's user; prints
                                            the password (or takes PARTNER_PASSWORD)
    python -m tools.partners remove NAME    delete the user (its queues stay until removed)
    make partner NAME=ping_an_365           the same as `add`, for the stack in AMQP_URI

A partner (another district's platform, 平安365) is the broker user `partner-<name>` in
the stack's vhost. What it may do, in RabbitMQ's terms (configure = declare or delete,
write = publish to an exchange or bind *to* a queue, read = consume a queue or bind
*from* an exchange):

    configure  its own queues `partner.<name>.*`, nothing else: it cannot declare or
               delete a queue of ours or another partner's, nor any exchange (it may
               declare our exchanges passively, which needs no permission);
    write      its own queues (so it can bind them) and the inbound exchange
               `partners.inbound`: it cannot publish to our `*.events` exchanges nor, via
               the default exchange (`amq.default`), into any queue;
    read       its own queues, and our public event exchanges (so it can bind its queues
               to them). Not `partners.inbound` (it would see the other partners' reports),
               not `partners.rejections`: its rejections are routed to
               `partner.<name>.rejected`, which this tool declares and binds for it, and
               never a service's `<service>.internal` exchange, whose events name who
               reported something (minqing_kernel/events.py, "Audiences").

Why the management HTTP API and not `rabbitmqctl`: it is how this works wherever the
broker runs. In Kubernetes the RabbitMQ cluster operator enables it, the topology
operator's User/Permission resources call it, and a Job can reach it over the network
with the admin's credentials; rabbitmqctl needs a shell in the broker's pod and its
Erlang cookie. Locally the plugin may be off: it is enabled once (it applies live).
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlparse

import requests
from kombu import Connection, Exchange, Queue

from services.intake.domain import (
    INBOUND_EXCHANGE,
    PARTNER_NAME,
    PARTNER_USER_PREFIX,
    REJECTIONS_EXCHANGE,
)

# Our exchanges a partner may bind its queues to; contracts/asyncapi.yaml documents each
# (a test checks that the two lists agree). A new service's events are not public until
# they are added here on purpose. An `.internal` exchange must never be added.
PUBLIC_EXCHANGES = ("intake.events", "dispatch.events", "integration365.events")


@dataclass(frozen=True)
class Broker:
    """The management API of the broker in an AMQP URI, as that URI's (admin) user."""
    api: str
    vhost: str
    auth: tuple[str, str]
    amqp_uri: str

    @classmethod
    def from_uri(cls, amqp_uri: str, api: str | None = None) -> Broker:
        url = urlparse(amqp_uri)
        vhost = unquote(url.path[1:]) if len(url.path) > 1 else "/"
        api = api or os.environ.get("RABBITMQ_MANAGEMENT_URL") or f"http://{url.hostname}:15672"
        return cls(api.rstrip("/"), vhost,
                   (unquote(url.username or "guest"), unquote(url.password or "guest")),
                   amqp_uri)

    def call(self, method: str, path: str, json: dict | None = None) -> requests.Response:
        r = requests.request(method, f"{self.api}/api/{path}", json=json, auth=self.auth,
                             timeout=10)
        if r.status_code >= 400 and not (method == "DELETE" and r.status_code == 404):
            raise RuntimeError(f"RabbitMQ management API: {method} /api/{path} answered "
                               f"{r.status_code}: {r.text[:300]}")
        return r

    def reachable(self) -> bool:
        try:
            return requests.get(f"{self.api}/api/overview", auth=self.auth,
                                timeout=3).status_code == 200
        except requests.RequestException:
            return False


def ensure_management(broker: Broker, timeout: float = 60) -> None:
    """Enable the management plugin on a local broker if its API does not answer."""
    if broker.reachable():
        return
    host = urlparse(broker.api).hostname
    if host not in ("127.0.0.1", "localhost") or shutil.which("rabbitmq-plugins") is None:
        raise RuntimeError(f"the RabbitMQ management API at {broker.api} does not answer; "
                           "enable the rabbitmq_management plugin or set "
                           "RABBITMQ_MANAGEMENT_URL")
    subprocess.run(["rabbitmq-plugins", "-q", "enable", "rabbitmq_management"], check=True,
                   capture_output=True)
    deadline = time.monotonic() + timeout
    while not broker.reachable():
        if time.monotonic() > deadline:
            raise RuntimeError(f"enabled rabbitmq_management, but {broker.api} still does "
                               f"not answer after {timeout}s")
        time.sleep(0.5)


def user_of(name: str) -> str:
    if not PARTNER_NAME.match(name):
        raise ValueError(f"partner name {name!r}: lowercase letters, digits and _, "
                         "2-40 characters, starting with a letter")
    return f"{PARTNER_USER_PREFIX}{name}"


def queue_prefix(name: str) -> str:
    return f"partner.{name}."


def rejection_queue(name: str) -> str:
    return f"{queue_prefix(name)}rejected"


def permissions(name: str) -> dict:
    """The three regular expressions RabbitMQ matches resource names against."""
    own = rf"partner\.{name}\..+"  # names cannot hold dots: no partner's prefix is another's
    public = "|".join(e.replace(".", r"\.") for e in PUBLIC_EXCHANGES)
    inbound = INBOUND_EXCHANGE.replace(".", r"\.")
    return {"configure": rf"^{own}$",
            "write": rf"^({own}|{inbound})$",
            "read": rf"^({own}|{public})$"}


def add(broker: Broker, name: str, password: str | None = None) -> str:
    """Create (or update) partner `name`'s user, its permissions and its rejection queue;
    return the password."""
    user = user_of(name)
    password = password or secrets.token_urlsafe(24)
    ensure_management(broker)
    broker.call("PUT", f"users/{quote(user, safe='')}", {"password": password, "tags": ""})
    broker.call("PUT", f"permissions/{quote(broker.vhost, safe='')}/{quote(user, safe='')}",
                permissions(name))
    # The exchanges exist before the partner binds or publishes, whether or not a service
    # has published yet (a relay declares its exchange on its first event), with exactly
    # the arguments the services declare them with.
    with Connection(broker.amqp_uri) as conn:
        try:
            channel = conn.default_channel
            for exchange in (INBOUND_EXCHANGE, *PUBLIC_EXCHANGES):
                Exchange(exchange, type="topic", durable=True)(channel).declare()
            rejections = Exchange(REJECTIONS_EXCHANGE, type="topic", durable=True)
            Queue(rejection_queue(name), exchange=rejections, routing_key=name, durable=True,
                  queue_arguments={"x-queue-type": "quorum"})(channel).declare()
        except (*conn.connection_errors, *conn.channel_errors) as exc:
            raise RuntimeError(f"user {user} made, but its exchanges and rejection queue "
                               f"could not be declared in vhost {broker.vhost!r} as "
                               f"{broker.auth[0]}: {exc}") from exc
    return password


def remove(broker: Broker, name: str) -> None:
    ensure_management(broker)
    broker.call("DELETE", f"users/{quote(user_of(name), safe='')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.partners", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["add", "remove"])
    parser.add_argument("name", help="the partner, e.g. ping_an_365")
    args = parser.parse_args(argv)
    broker = Broker.from_uri(os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"))
    try:
        if args.command == "add":
            password = add(broker, args.name, os.environ.get("PARTNER_PASSWORD"))
            url = urlparse(broker.amqp_uri)
            host = f"{url.hostname}:{url.port or 5672}"
            print(f"partner {args.name}: RabbitMQ user {user_of(args.name)} in vhost "
                  f"{broker.vhost!r}\n"
                  f"  AMQP_URI  amqp://{user_of(args.name)}:{password}@{host}/"
                  f"{quote(broker.vhost, safe='')}\n"
                  f"  publish   {INBOUND_EXCHANGE} (set user_id={user_of(args.name)})\n"
                  f"  queues    {queue_prefix(args.name)}*   rejections: "
                  f"{rejection_queue(args.name)}\n"
                  f"  contract  contracts/asyncapi.yaml")
        else:
            remove(broker, args.name)
            print(f"partner {args.name}: user {user_of(args.name)} removed")
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
