"""The brands dialect (/brands, /fans): X-API-Token views, schemas, discounts (`adapter`)
and fans (`fans`), each fan's code a coupon of the brand's tenant."""
