"""What exists: coupons and their definitions, campaigns and their codes.

`lookup` finds a coupon by its code (a campaign's code becomes a coupon there, once);
`coupons` creates and changes them; `campaigns` holds a campaign's codes and
template, `generation` draws its codes, `transfer` exports and imports them as CSV,
`bulk_codes` writes many codes to the registry at once.
"""
