"""The HTTP side of halo-stripe: Stripe webhooks and the routes other parts mount.

The receiver only verifies, stores and responds. Work after the 2xx happens
in Dagster.
"""
