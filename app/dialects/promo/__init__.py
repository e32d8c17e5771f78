"""The promo code dialect (/promocodes): its views, schemas, texts (Russian and English)
and the adapter that maps promo codes onto the engine's coupons."""
