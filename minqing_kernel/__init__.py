"""The shared kernel: what every MinQing service uses and nothing domain-specific.

One way to do each cross-cutting thing: the CloudEvents envelope (`events`), a unit of
work whose events go to a transactional outbox (`db`), the relay that publishes the
outbox (`outbox`), idempotent consumption with dead-lettering (`consumer`), problem
errors that cross RPC typed (`errors`), the object store (`objectstore`), metrics and
health (`ops`), ids from outside (`ids`), paging (`pagination`), reference data cached
per process (`reference`), and fault points for crash tests (`faults`).
"""
