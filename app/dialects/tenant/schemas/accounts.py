"""OAuth2 token and customer account schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class TokenRequestSchema(Schema):
    """RFC 6749 client credentials request (form-encoded or JSON)."""

    class Meta:
        unknown = "exclude"  # clients send extras such as token_type

    grant_type = fields.String(required=True, validate=validate.Length(max=64))
    client_id = fields.String(validate=validate.Length(max=128))
    client_secret = fields.String(validate=validate.Length(max=256))
    scope = fields.String(validate=validate.Length(max=1024))


class TokenSchema(Schema):
    access_token = fields.String()
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_in = fields.Integer()
    scope = fields.String(metadata={"example": "hybris.tenant=acme hybris.coupon_manage"})


class OAuthErrorSchema(Schema):
    error = fields.String(metadata={"example": "invalid_client"})
    error_description = fields.String()


class CredentialsSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(min=6, max=128))


class SignupResultSchema(Schema):
    customer_number = fields.String(data_key="customerNumber")
    id = fields.String()


class LoginResultSchema(Schema):
    access_token = fields.String(data_key="accessToken")
    token_type = fields.String(data_key="tokenType")
    expires_in = fields.Integer(data_key="expiresIn")


class CustomerSchema(Schema):
    customer_number = fields.String(data_key="customerNumber")
    email = fields.String()
    created_at = fields.DateTime(data_key="createdAt")
