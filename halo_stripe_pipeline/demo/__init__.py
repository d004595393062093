"""The demo: a sample Stripe account in localstripe, matching companies, a full sync.

`sample` defines the account (plans, coupons, named customers and a seeded
filler), `populate` creates it through the Stripe API of a running emulator,
`companies` writes the matching Halo companies, and `commands` wires it all
into `halo-stripe demo`.
"""
