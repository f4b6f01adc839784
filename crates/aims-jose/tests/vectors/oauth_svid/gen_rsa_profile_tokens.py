#!/usr/bin/env python3
"""Regenerates rsa_profile_tokens.json: one token per AIMS profile signed with the
RSA key published in RFC 7520 section 3.4 (the JOSE Cookbook "bilbo.baggins" key, in
4_1.rsa_v15_signature.json next to this script).

AIMS cannot sign with RSA (it is verify-only), so these tokens show that each
profile's validator accepts RS256 (and PS256 for access tokens) end to end.
RS256 (RSASSA-PKCS1-v1_5) is deterministic: running this script again reproduces the
RS256 tokens byte for byte. PS256 uses a random salt, so that token changes on every
run and is verify-only.

Requires the `cryptography` package. Usage: python3 gen_rsa_profile_tokens.py
"""

import base64
import json
import pathlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = pathlib.Path(__file__).parent
NOW = 1_700_000_000


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_of(member: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(member + "=" * (-len(member) % 4)), "big")


def private_key(jwk: dict) -> rsa.RSAPrivateKey:
    public = rsa.RSAPublicNumbers(int_of(jwk["e"]), int_of(jwk["n"]))
    numbers = rsa.RSAPrivateNumbers(
        int_of(jwk["p"]), int_of(jwk["q"]), int_of(jwk["d"]),
        int_of(jwk["dp"]), int_of(jwk["dq"]), int_of(jwk["qi"]), public,
    )
    return numbers.private_key()


def sign(key: rsa.RSAPrivateKey, alg: str, header: dict, claims: dict) -> str:
    signing_input = (
        b64u(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64u(json.dumps(claims, separators=(",", ":")).encode())
    )
    if alg == "RS256":
        pad = padding.PKCS1v15()
    elif alg == "PS256":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        raise ValueError(alg)
    sig = key.sign(signing_input.encode(), pad, hashes.SHA256())
    return signing_input + "." + b64u(sig)


def main() -> None:
    cookbook = json.loads((HERE / "4_1.rsa_v15_signature.json").read_text())
    jwk = cookbook["input"]["key"]
    key = private_key(jwk)
    kid = jwk["kid"]

    access = {
        "iss": "https://as.example", "sub": "user-1", "aud": "https://rs.example",
        "client_id": "agent-7", "exp": NOW + 300, "iat": NOW, "jti": "rsa-at-1",
        "scope": "files:read",
    }
    tokens = {
        "now": NOW,
        "kid": kid,
        "access_token_rs256": sign(key, "RS256", {"typ": "at+jwt", "alg": "RS256", "kid": kid}, access),
        "access_token_ps256": sign(key, "PS256", {"typ": "at+jwt", "alg": "PS256", "kid": kid}, access),
        "jwt_svid_rs256": sign(
            key, "RS256", {"alg": "RS256", "kid": kid, "typ": "JWT"},
            {"sub": "spiffe://example.org/agent/billing", "aud": ["https://as.example"],
             "exp": NOW + 300, "iat": NOW},
        ),
        "client_assertion_rs256": sign(
            key, "RS256", {"alg": "RS256", "kid": kid, "typ": "client-authentication+jwt"},
            {"iss": "agent-7", "sub": "agent-7", "aud": "https://as.example",
             "exp": NOW + 60, "iat": NOW, "jti": "rsa-ca-1"},
        ),
        "set_rs256": sign(
            key, "RS256", {"typ": "secevent+jwt", "alg": "RS256", "kid": kid},
            {"iss": "https://ssf.transmitter.example", "iat": NOW, "jti": "rsa-set-1",
             "aud": "https://receiver.example",
             "sub_id": {"format": "email", "email": "user@example.com"},
             "events": {"https://schemas.openid.net/secevent/caep/event-type/session-revoked":
                        {"event_timestamp": NOW - 5}}},
        ),
    }
    out = HERE / "rsa_profile_tokens.json"
    out.write_text(json.dumps(tokens, indent=2) + "\n")


if __name__ == "__main__":
    main()
