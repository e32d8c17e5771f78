"""The coupon engine: what a coupon is and what may happen to it, for every dialect.

No Flask here (no request, no app context): settings arrive as arguments, metrics
through `observe`, caches through `cache`. Pure parts (`rules`, `stacking`, `money`,
`codes`, `canonical`) touch no database; `catalog` and `usage` do, through one unit
of work (`uow`), the only place that commits.
"""
