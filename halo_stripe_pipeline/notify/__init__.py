"""Slack notifications about Stripe events, posted through an outbox table."""
