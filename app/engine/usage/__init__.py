"""What happens to a coupon: it is checked, held, redeemed, given back.

`state` reads a coupon's state (typed, before a decision or under the row lock);
`ledger` writes every use taken or given back with guarded statements; on top of
them, as siblings, `redemption` (one code), `holds` (a use kept while the shopper
pays), `carts` (several codes on one order) and `qualifications` (which codes fit).
"""
