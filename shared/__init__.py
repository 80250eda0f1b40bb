"""The batch-calls shared package: event contracts, topics, settings, telemetry and infrastructure factories.

It imports no service; every service imports it.
"""
