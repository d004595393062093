"""Benchmarks of halo-stripe at account scale: a stand-in Stripe, an account
generator and the scripts that measure the backfill, memory, load and dbt."""
