#!/usr/bin/env python3
"""SPIFFE Workload API interoperability check with py-spiffe (PyPI package `spiffe`).

Connects to the Workload API at SPIFFE_ENDPOINT_SOCKET (e.g. `unix:///run/aims/workload.sock`)
and, with the library's own types and checks:

- fetches the X509-SVIDs and X.509 bundles through a WorkloadApiClient, then the X.509
  context through X509Sources, the default one and one per SVID with an `svid_picker`
  (py-spiffe parses each SVID and applies its leaf rules);
- verifies every SVID chain against the bundle of its trust domain: each certificate
  signed by the next, the last by a bundle authority, validity times, and RFC 5280 path
  validation with `cryptography`'s verifier (client profile; `--path-validation report`
  only reports its outcome); checks the private key matches the leaf;
- for every SVID's SPIFFE ID, fetches a JWT-SVID for the audience, fetches the JWT
  bundles, validates the token with `JwtSvid.parse_and_validate` (signature, `exp`,
  `aud`) and with the Workload API's ValidateJWTSVID, and checks that another
  audience is refused;
- fetches the JWT bundles through a JwtSource too.

`--authority localhost` sets the gRPC `:authority` (see `set_default_authority`: needed
with servers built on Rust's h2, such as AIMS). Without it the library runs exactly as
shipped.

Prints one JSON summary on stdout. Exit codes: 0 all checks passed, 1 a check failed
(the summary's `error` says which), 2 bad usage, 3 the `spiffe` package is not installed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import traceback

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MISSING = 3


class CheckFailed(Exception):
    """A check did not hold."""


def version_of(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def spki(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_kind(public_key) -> str:
    """`ec-p256`, `ec-p384`, `ed25519`, ... for a public key."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ec-p256", "secp384r1": "ec-p384"}.get(
            public_key.curve.name, public_key.curve.name
        )
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa-{public_key.key_size}"
    return type(public_key).__name__


def verify_chain(svid, bundle_set, now: datetime.datetime, path_validation: str) -> dict:
    """Verifies an X509-SVID's chain against the bundle of its trust domain.

    `path_validation` `required`: `cryptography`'s path validation must succeed;
    `report`: its outcome is only reported (its policy refuses Ed25519 keys, for example).
    """
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store

    sid = str(svid.spiffe_id)
    chain = svid.cert_chain
    check(len(chain) >= 1, f"{sid}: empty certificate chain")
    bundle = bundle_set.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
    check(bundle is not None, f"{sid}: no X.509 bundle for trust domain {svid.spiffe_id.trust_domain}")
    authorities = list(bundle.x509_authorities)
    check(len(authorities) > 0, f"{sid}: the bundle has no X.509 authority")

    # Signatures, one link at a time, then to an authority of the bundle.
    for child, parent in zip(chain, chain[1:]):
        child.verify_directly_issued_by(parent)
    anchored = False
    for authority in authorities:
        try:
            chain[-1].verify_directly_issued_by(authority)
            anchored = True
            break
        except Exception:  # noqa: BLE001 - InvalidSignature, ValueError, TypeError: next one
            continue
    check(anchored, f"{sid}: the chain does not end at an authority of the bundle")
    for cert in chain:
        check(
            cert.not_valid_before_utc <= now <= cert.not_valid_after_utc,
            f"{sid}: certificate {cert.subject.rfc4514_string()!r} is not valid now",
        )

    # RFC 5280 path validation by `cryptography` (client certificate profile).
    verifier = PolicyBuilder().store(Store(authorities)).time(now).build_client_verifier()
    path = {"path_validated": False}
    try:
        verified = verifier.verify(chain[0], chain[1:])
        uris = [
            n.value
            for n in (verified.subjects or [])
            if isinstance(n, x509.UniformResourceIdentifier)
        ]
        check(uris == [sid], f"{sid}: path validation reports URI SANs {uris}")
        path = {"path_validated": True, "path_length": len(verified.chain)}
    except Exception as e:  # noqa: BLE001 - reported, and raised again when required
        if path_validation == "required":
            raise
        path["path_validation_error"] = f"{type(e).__name__}: {e}"

    check(
        spki(svid.private_key.public_key()) == spki(svid.leaf.public_key()),
        f"{sid}: the private key does not match the leaf certificate",
    )
    return {
        "spiffe_id": sid,
        "chain_length": len(chain),
        "chain_verified": True,
        **path,
        "key_matches_leaf": True,
        "leaf_key": key_kind(svid.leaf.public_key()),
        "authority_key": key_kind(authorities[0].public_key()),
        "not_after": int(svid.leaf.not_valid_after_utc.timestamp()),
    }


def bundle_counts_x509(bundle_set_or_bundles) -> dict:
    bundles = (
        bundle_set_or_bundles.bundles
        if hasattr(bundle_set_or_bundles, "bundles")
        else bundle_set_or_bundles
    )
    return {str(b.trust_domain): len(b.x509_authorities) for b in bundles}


def bundle_counts_jwt(bundles) -> dict:
    return {str(b.trust_domain): len(b.jwt_authorities) for b in bundles}


def set_default_authority(authority: str) -> None:
    """Makes every gRPC channel send `:authority: <authority>`.

    grpc-core (under grpcio) sends the percent-encoded socket path as `:authority` on a
    Unix socket (e.g. `tmp%2Faims%2Fworkload.sock`). Servers built on Rust's `h2`
    (tonic, hence AIMS) refuse that authority with RST_STREAM(PROTOCOL_ERROR), so
    py-spiffe as shipped gets `StatusCode.INTERNAL` from them; grpc-go and tonic clients
    send `localhost`. py-spiffe has no option for it, so `--authority` sets gRPC's
    `grpc.default_authority` channel option under it; nothing else of the library changes.
    """
    import grpc

    original = grpc.insecure_channel

    def insecure_channel(target, options=None, compression=None):
        options = [o for o in (options or []) if o[0] != "grpc.default_authority"]
        options.append(("grpc.default_authority", authority))
        return original(target, options=options, compression=compression)

    grpc.insecure_channel = insecure_channel


def run(audience: str, timeout: float, path_validation: str, summary: dict) -> None:
    import jwt as pyjwt
    from spiffe import JwtSource, JwtSvid, SpiffeId, WorkloadApiClient, X509Source

    now = datetime.datetime.now(datetime.timezone.utc)

    with WorkloadApiClient(default_timeout=timeout) as client:
        summary["endpoint"] = client.get_spiffe_endpoint_socket()

        # X.509 through the plain client's one-shot calls (a transport error shows here
        # at once, while the sources below retry it until their timeout).
        svids = client.fetch_x509_svids()
        bundles = client.fetch_x509_bundles()
        check(len(svids) > 0, "FetchX509SVID returned no SVID")
        summary["x509"] = {
            "svids": [verify_chain(s, bundles, now, path_validation) for s in svids],
            "bundles": bundle_counts_x509(bundles),
        }
        ids = [str(s.spiffe_id) for s in svids]

        # The same through X509Sources (streaming, the way most applications use them):
        # the default SVID, then each SVID chosen with an svid_picker.
        with X509Source(workload_api_client=client, timeout_in_seconds=timeout) as source:
            ctx = source.get_x509_context()
            summary["x509_source"] = {
                "default_svid": str(ctx.default_svid.spiffe_id),
                "bundles": bundle_counts_x509(ctx.x509_bundle_set),
                "picked": [],
            }
        check(summary["x509_source"]["default_svid"] in ids, "X509Source's SVID is not served")
        for sid in ids:

            def pick(candidates, sid=sid):
                return next(c for c in candidates if str(c.spiffe_id) == sid)

            with X509Source(
                workload_api_client=client, timeout_in_seconds=timeout, svid_picker=pick
            ) as source:
                picked = source.get_x509_context().default_svid
                check(str(picked.spiffe_id) == sid, f"svid_picker asked for {sid}")
                summary["x509_source"]["picked"].append(sid)

        # JWT-SVIDs, one per identity, validated by the library and by the server.
        jwt_bundles = client.fetch_jwt_bundles()
        summary["jwt_bundles"] = bundle_counts_jwt(jwt_bundles.bundles)
        results = []
        for sid in ids:
            fetched = client.fetch_jwt_svid({audience}, subject=SpiffeId(sid))
            check(str(fetched.spiffe_id) == sid, f"asked for a JWT-SVID of {sid}, got {fetched.spiffe_id}")
            bundle = jwt_bundles.get_bundle_for_trust_domain(fetched.spiffe_id.trust_domain)
            check(bundle is not None, f"no JWT bundle for {fetched.spiffe_id.trust_domain}")
            valid = JwtSvid.parse_and_validate(fetched.token, bundle, {audience})
            check(str(valid.spiffe_id) == sid, f"validated JWT-SVID names {valid.spiffe_id}")
            check(audience in valid.audience, f"validated JWT-SVID audience {valid.audience}")
            by_server = client.validate_jwt_svid(fetched.token, audience)
            check(str(by_server.spiffe_id) == sid, "ValidateJWTSVID names another SPIFFE ID")
            wrong_audience_rejected = False
            try:
                JwtSvid.parse_and_validate(fetched.token, bundle, {audience + "/other"})
            except Exception:  # noqa: BLE001 - any rejection will do
                wrong_audience_rejected = True
            check(wrong_audience_rejected, f"{sid}: a JWT-SVID for another audience was accepted")
            header = pyjwt.get_unverified_header(fetched.token)
            results.append(
                {
                    "spiffe_id": sid,
                    "audience": sorted(valid.audience),
                    "alg": header.get("alg"),
                    "typ": header.get("typ"),
                    "expiry": valid.expiry,
                    "validated": True,
                    "validated_by_workload_api": True,
                    "wrong_audience_rejected": True,
                }
            )
        summary["jwt"] = results

        # JWT bundles through a JwtSource.
        with JwtSource(workload_api_client=client, timeout_in_seconds=timeout) as jwt_source:
            summary["jwt_source_bundles"] = bundle_counts_jwt(jwt_source.bundles)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audience", default="spiffe://example.org/interop")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per Workload API call")
    parser.add_argument(
        "--authority",
        help="send this gRPC :authority (e.g. localhost) instead of grpc-core's default for "
        "Unix sockets, the percent-encoded socket path (see set_default_authority)",
    )
    parser.add_argument(
        "--path-validation",
        choices=["required", "report"],
        default="required",
        help="whether cryptography's RFC 5280 path validation must pass or is only reported",
    )
    args = parser.parse_args()

    summary: dict = {
        "versions": {
            "python": platform.python_version(),
            "spiffe": version_of("spiffe"),
            "cryptography": version_of("cryptography"),
            "grpcio": version_of("grpcio"),
            "protobuf": version_of("protobuf"),
            "pyjwt": version_of("pyjwt"),
        },
        "executable": os.path.realpath("/proc/self/exe"),
        "ok": False,
    }
    if importlib.util.find_spec("spiffe") is None:
        summary["error"] = "the Python package `spiffe` is not installed"
        summary["missing"] = "spiffe"
        print(json.dumps(summary))
        return EXIT_MISSING
    if not os.environ.get("SPIFFE_ENDPOINT_SOCKET"):
        print("SPIFFE_ENDPOINT_SOCKET is not set", file=sys.stderr)
        return EXIT_USAGE
    summary["authority"] = args.authority
    try:
        if args.authority:
            set_default_authority(args.authority)
        run(args.audience, args.timeout, args.path_validation, summary)
    except Exception as e:  # noqa: BLE001 - report every failure the same way
        summary["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc(file=sys.stderr)
        print(json.dumps(summary, indent=2))
        return EXIT_FAILED
    summary["ok"] = True
    print(json.dumps(summary, indent=2))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
