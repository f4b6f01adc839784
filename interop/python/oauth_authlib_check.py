#!/usr/bin/env python3
"""Drives the AIMS OAuth 2.0 authorization server with Authlib (PyPI `authlib`).

Run by crates/aims-server/tests/it/interop_oauth.rs against a real server. Everything
on the wire is done by Authlib's requests integration (`OAuth2Session`) and its RFC 7523
`PrivateKeyJWT` client authentication; this script only chooses the configuration and
reports what happened as one JSON object on stdout, which the Rust test asserts (it
verifies the access tokens itself with the server's JWKS).

Steps:
  metadata          GET /.well-known/oauth-authorization-server with the session
  default_audience  PrivateKeyJWT() as documented: aud = the token endpoint URL
  default_lifetime  PrivateKeyJWT(issuer): aud = issuer, Authlib's default exp = iat + 3600 s
  tokens            PrivateKeyJWT(issuer) with a 60 s lifetime: two client_credentials
                    tokens with `resource` and `scope`
  claims_jti_reuse  PrivateKeyJWT(issuer, claims={"exp": ...}): Authlib stores the
                    generated jti into the claims dict it was given, so a second request
                    reuses the same jti
  introspection     introspect_token for the first token (active) and after
                    revoke_token (inactive)

Input: --input FILE, a JSON object {issuer, client_id, private_key_pem, kid, resource,
scope}. Exit 0 with the JSON summary; 3 when Authlib is not importable.
"""

import argparse
import json
import sys
import time

try:
    import authlib
    from authlib.integrations.requests_client import OAuth2Session
    from authlib.oauth2.rfc7523 import PrivateKeyJWT
    from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
    from joserfc.jwk import ECKey
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"authlib not importable: {e}", file=sys.stderr)
    sys.exit(3)


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    """PrivateKeyJWT with an assertion lifetime other than Authlib's fixed 3600 s.

    Authlib's PrivateKeyJWT.sign does not forward `expires_in`; passing `exp` through
    `claims` instead makes every assertion reuse one jti (see claims_jti_reuse), so the
    lifetime is set here, with a fresh claims dict (and jti) per assertion.
    """

    def __init__(self, audience, lifetime, **kwargs):
        super().__init__(audience, **kwargs)
        self.lifetime = lifetime

    def sign(self, auth, token_endpoint):
        return private_key_jwt_sign(
            auth.client_secret,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            claims=dict(self.claims or {}),
            header=self.headers,
            alg=self.alg,
            expires_in=self.lifetime,
        )


def error_of(e):
    """(error, description) of an Authlib OAuthError, else the exception text."""
    return {
        "error": getattr(e, "error", None) or type(e).__name__,
        "description": getattr(e, "description", None) or str(e),
    }


def session(cfg, key, auth):
    s = OAuth2Session(
        cfg["client_id"],
        key,
        token_endpoint_auth_method=auth,
        revocation_endpoint_auth_method=auth,
        scope=cfg["scope"],
    )
    s.timeout = 20
    return s


def fetch(s, meta, cfg):
    return s.fetch_token(
        meta["token_endpoint"],
        grant_type="client_credentials",
        resource=cfg["resource"],
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--input", required=True)
    args = p.parse_args()
    with open(args.input, encoding="utf-8") as f:
        cfg = json.load(f)
    issuer = cfg["issuer"]
    key = ECKey.import_key(cfg["private_key_pem"], {"kid": cfg["kid"]})
    headers = {"kid": cfg["kid"]}
    out = {"authlib_version": authlib.__version__}

    # Metadata (RFC 8414), fetched with an Authlib session.
    meta_url = issuer.rstrip("/") + "/.well-known/oauth-authorization-server"
    plain = OAuth2Session(cfg["client_id"])
    r = plain.get(meta_url, timeout=20, withhold_token=True)
    r.raise_for_status()
    meta = r.json()
    out["metadata"] = {
        "issuer": meta.get("issuer"),
        "token_endpoint": meta.get("token_endpoint"),
        "introspection_endpoint": meta.get("introspection_endpoint"),
        "revocation_endpoint": meta.get("revocation_endpoint"),
        "auth_methods": meta.get("token_endpoint_auth_methods_supported"),
    }

    # 1. Authlib's default: no audience given, so aud = the URL of the request
    #    (the token endpoint), and exp = iat + 3600.
    s = session(cfg, key, PrivateKeyJWT(alg="ES256", headers=headers))
    try:
        fetch(s, meta, cfg)
        out["default_audience"] = {"outcome": "token"}
    except Exception as e:  # noqa: BLE001 - reported
        out["default_audience"] = {"outcome": "refused", **error_of(e)}

    # 2. The issuer as audience, but Authlib's default lifetime (3600 s).
    s = session(cfg, key, PrivateKeyJWT(issuer, alg="ES256", headers=headers))
    try:
        fetch(s, meta, cfg)
        out["default_lifetime"] = {"outcome": "token"}
    except Exception as e:  # noqa: BLE001
        out["default_lifetime"] = {"outcome": "refused", **error_of(e)}

    # 3. The working configuration: aud = issuer, 60 s assertions.
    auth = ShortLivedPrivateKeyJWT(issuer, 60, alg="ES256", headers=headers)
    s = session(cfg, key, auth)
    tokens = []
    for _ in range(2):
        t = fetch(s, meta, cfg)
        tokens.append(
            {
                "access_token": t.get("access_token"),
                "token_type": t.get("token_type"),
                "scope": t.get("scope"),
                "expires_in": t.get("expires_in"),
            }
        )
    out["tokens"] = tokens

    # 4. exp through `claims`: Authlib writes its generated jti into that same dict.
    s4 = session(
        cfg,
        key,
        PrivateKeyJWT(
            issuer,
            claims={"exp": int(time.time()) + 60},
            alg="ES256",
            headers=headers,
        ),
    )
    results = []
    for _ in range(2):
        try:
            fetch(s4, meta, cfg)
            results.append({"outcome": "token"})
        except Exception as e:  # noqa: BLE001
            results.append({"outcome": "refused", **error_of(e)})
    out["claims_jti_reuse"] = results

    # 5. Introspection (RFC 7662) and revocation (RFC 7009) with the same client auth.
    at = tokens[0]["access_token"]
    r = s.introspect_token(meta["introspection_endpoint"], token=at)
    before = {"status": r.status_code, "body": r.json()}
    r = s.revoke_token(meta["revocation_endpoint"], token=at, token_type_hint="access_token")
    revoke_status = r.status_code
    r = s.introspect_token(meta["introspection_endpoint"], token=at)
    after = {"status": r.status_code, "body": r.json()}
    out["introspection"] = {"before": before, "revoke_status": revoke_status, "after": after}

    print(json.dumps(out))


if __name__ == "__main__":
    main()
