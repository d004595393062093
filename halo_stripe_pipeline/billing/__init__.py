"""The billing approval queue: agents submit, approvers decide, Stripe executes.

Requests live in `billing.requests`; every status change is written to
`billing.request_events` in the same transaction as the change. This package
reads the warehouse (`stripe_raw`, `halo`, and the `analytics` marts for the
approval page) and calls Stripe only through `stripe_client.StripeApi`.
"""
