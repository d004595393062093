"""Stripe events: applying stored events to `stripe_raw`, and catching up.

Modules here that the receiver imports (`types`, `secrets`, `store`) import
nothing of Dagster; the Dagster sensor and job live in `definitions`.
"""
