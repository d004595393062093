"""halo-stripe: the Stripe integration of Halo, as a Dagster code location."""
