"""The tenant coupon dialect (/coupon/v1/{tenant}/...), with its OAuth2 token endpoint
and customer accounts: camelCase on the wire, `{"status","type","message"}` errors."""
