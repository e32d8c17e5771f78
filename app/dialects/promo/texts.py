"""Texts of the promo dialect: Russian, as its clients expect, or English on request.

Keys are rule violation types, error types or codes, and a few promo-only
outcomes. A key without a text falls back to the caller's own message.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask import has_request_context, request

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"

PROMO_TEXTS: dict[str, dict[str, str]] = {
    # check and redeem outcomes
    "applied": {"ru": "Промокод применен", "en": "Promo code applied"},
    "coupon_not_found": {"ru": "Промокод не найден", "en": "Promo code not found"},
    "coupon_redemption_forbidden": {
        "ru": "Промокод недоступен этому покупателю",
        "en": "This promo code is not available to this customer",
    },
    "inactive": {"ru": "Промокод не активен", "en": "Promo code is not active"},
    "not_yet_valid": {
        "ru": "Промокод начнет действовать {valid_from}",
        "en": "Promo code is valid from {valid_from}",
    },
    "coupon_expired": {"ru": "Срок действия промокода истек", "en": "Promo code has expired"},
    "coupon_redemptions_exceeded": {
        "ru": "Промокод больше не действует: исчерпан лимит использований",
        "en": "Promo code has reached its usage limit",
    },
    "coupon_currency_incorrect": {
        "ru": "Промокод действует только для заказов в валюте {expected}",
        "en": "Promo code only applies to orders in {expected}",
    },
    "coupon_order_total_too_low": {
        "ru": "Минимальная сумма заказа для промокода {minimum}: добавьте товаров еще на {missing}",
        "en": "The order must total at least {minimum} for this promo code: add {missing} more",
    },
    "coupon_required_product_missing": {
        "ru": "Для применения промокода добавьте в заказ товар {product}",
        "en": "Add product {product} to the order to use this promo code",
    },
    "coupon_items_required": {
        "ru": "Промокод дает скидку на товары: передайте товары заказа",
        "en": "This promo code discounts items: send the order's items",
    },
    "coupon_not_applicable_to_items": {
        "ru": "В заказе нет товаров, на которые действует промокод",
        "en": "No item of the order is one this promo code discounts",
    },
    "coupon_budget_exhausted": {
        "ru": "Бюджет промокода исчерпан",
        "en": "The promo code's budget is spent",
    },
    "campaign_customer_limit": {
        "ru": "Покупатель уже использовал промокод этой акции",
        "en": "The customer already used a promo code of this campaign",
    },
    "not_applicable": {
        "ru": "Промокод не может быть применен к этому заказу",
        "en": "Promo code cannot be applied to this order",
    },
    # admin outcomes and errors
    "deleted": {"ru": "Промокод успешно удален", "en": "Promo code deleted"},
    # holds (redeem with ttlSeconds)
    "released": {"ru": "Бронь промокода снята", "en": "The promo code's hold was released"},
    "reservation_not_found": {
        "ru": "Бронь промокода для этого заказа не найдена",
        "en": "No hold of this promo code for this order",
    },
    "reservation_released": {
        "ru": "Бронь промокода уже снята",
        "en": "The hold was already released",
    },
    "reservation_confirmed": {
        "ru": "Промокод уже использован этим заказом",
        "en": "The hold was already used by this order",
    },
    "reservation_order_differs": {
        "ru": "Промокод забронирован этим заказом на другую сумму или скидку",
        "en": "This order id holds the promo code for another total or discount",
    },
    "coupon_order_already_held": {
        "ru": "Промокод забронирован этим заказом для другого покупателя",
        "en": "This order id holds the promo code for another customer",
    },
    # The trailing space is the original contract's.
    "PROMO_IS_EXISTS": {
        "ru": "Промокод '{coupon}' уже существует ",
        "en": "Promo code '{coupon}' already exists",
    },
    "promo_not_found": {"ru": "Промокод не найден", "en": "Promo code not found"},
    # The original contract answers bad payloads in English in both languages.
    "validation_failed": {"ru": "Invalid promo data", "en": "Invalid promo data"},
    "unauthorized": {"ru": "Требуется авторизация", "en": "Authentication required"},
    "invalid_token": {
        "ru": "Токен доступа недействителен или истек",
        "en": "The access token is invalid or expired",
    },
    "admin_role_required": {
        "ru": "Требуется роль администратора (scope hybris.coupon_manage)",
        "en": "Requires the admin role (scope hybris.coupon_manage)",
    },
    "user_role_required": {
        "ru": "Требуется роль пользователя (scope hybris.coupon_redeem или токен покупателя)",
        "en": "Requires the user role (scope hybris.coupon_redeem or a customer token)",
    },
    "not_found": {"ru": "Ресурс не найден", "en": "Resource not found"},
    "method_not_allowed": {"ru": "Метод не поддерживается", "en": "Method not allowed"},
    "unsupported_media_type": {
        "ru": "Тело запроса должно быть в формате JSON (application/json)",
        "en": "Send a JSON body (application/json)",
    },
    "payload_too_large": {"ru": "Слишком большой запрос", "en": "Request body too large"},
    "rate_limited": {"ru": "Слишком много запросов", "en": "Too many requests"},
    "idempotency_key_reused": {
        "ru": "Idempotency-Key уже использован с другим запросом",
        "en": "Idempotency-Key was already used with a different request",
    },
    "idempotency_in_progress": {
        "ru": "Запрос с этим Idempotency-Key еще выполняется",
        "en": "A request with this Idempotency-Key is still being processed",
    },
}


def language() -> str:
    """The language of this request: English when Accept-Language prefers it, else Russian."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    return request.accept_languages.best_match(LANGUAGES, default=DEFAULT_LANGUAGE)


def promo_text(key: str, default: str | None = None, **params) -> str | None:
    """The text for `key` in the request's language, with params filled in."""
    texts = PROMO_TEXTS.get(key)
    if texts is None:
        return default
    return texts[language()].format(**{k: _plain(v) for k, v in params.items()})


def _plain(value) -> str:
    """Numbers without trailing zeros, times as `2024-03-15 10:00 UTC`."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)
