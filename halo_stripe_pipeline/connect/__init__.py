"""Connecting Stripe accounts: OAuth, encrypted tokens, one partition per account.

Modules here import nothing of Dagster except `definitions`, so the receiver
and the webhook processor can import them.
"""

from halo_stripe_pipeline.connect.accounts import disconnect_account

__all__ = ["disconnect_account"]
