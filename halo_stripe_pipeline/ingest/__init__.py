"""The Stripe backfill: object types, range-sliced paging and the raw assets."""
