"""The HTTP side of halo-stripe: Stripe webhooks and the routes other parts mount.

The receiver only verifies, stores and answers; work after the 2xx happens in
Dagster.
"""
