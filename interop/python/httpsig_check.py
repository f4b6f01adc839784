#!/usr/bin/env python3
"""RFC 9421 interoperability check with the Python `http-message-signatures` package.

    httpsig_check.py verify CASE.json       verify a request signed elsewhere (by AIMS)
    httpsig_check.py sign CASE.json         sign a request for another verifier (AIMS)
    httpsig_check.py components CASE.json   the library's value of each derived component

CASE.json (the same shape for both modes; one request):

    {
      "method": "POST",
      "url": "https://api.example.com/v1/tools/search?q=agents",
      "headers": [["content-type", "application/json"], ...],   # field lines, in order
      "body": "...",                                             # UTF-8 text
      "alg": "ed25519" | "ecdsa-p256-sha256",
      "keyid": "..." | null,       # null: the signature names no key (WIMSE profile)
      "label": "sig1",
      "covered": ["@method", "@authority", "@path", "content-digest", "content-type"],
      "public_key_pem": "...",      # verify
      "private_key_pem": "..."      # sign (PKCS#8)
    }

`verify` checks the single signature with the library's HTTPMessageVerifier: the
`alg`, `keyid` and `created` parameters, that every component in `covered` is covered,
the signature, and the body against the signed Content-Digest (the library's
`body=` option). `sign` signs with HTTPMessageSigner (`body=` makes the library add
Content-Digest) and returns the request's field lines with Signature-Input and Signature.

`components` takes {"requests": [{"method", "url", "headers"}, ...], "components": [...]}
(serialized component identifiers such as `"@query-param";name="q"`) and returns, per
request, each component's value in the library's signature base, or its error.

Prints one JSON object on stdout. Exit codes: 0 verified or signed, 1 rejected or
failed (`error` says why), 2 bad usage, 3 the package is not installed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sys

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MISSING = 3
PACKAGE = "http-message-signatures"


class Headers:
    """Field lines in order, with the mapping operations the library uses."""

    def __init__(self, pairs):
        self._pairs = [(str(n), str(v)) for n, v in pairs]

    def items(self):
        return list(self._pairs)

    def __iter__(self):
        return iter(dict.fromkeys(n for n, _ in self._pairs))

    def __contains__(self, name):
        return any(n.lower() == name.lower() for n, _ in self._pairs)

    def __getitem__(self, name):
        values = [v for n, v in self._pairs if n.lower() == name.lower()]
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __setitem__(self, name, value):
        del self[name]
        self._pairs.append((name, value))

    def __delitem__(self, name):
        self._pairs = [(n, v) for n, v in self._pairs if n.lower() != name.lower()]


class Request:
    """The request interface of the library's component resolver."""

    def __init__(self, case):
        self.method = case["method"]
        self.url = case["url"]
        self.headers = Headers(case["headers"])


def algorithm(name):
    from http_message_signatures import algorithms

    table = {
        "ed25519": algorithms.ED25519,
        "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256,
        "ecdsa-p384-sha384": algorithms.ECDSA_P384_SHA384,
    }
    if name not in table:
        raise ValueError(f"unsupported algorithm {name!r}")
    return table[name]


def verify(case):
    from http_message_signatures import HTTPMessageVerifier, MappingKeyResolver

    resolver = MappingKeyResolver(
        public_keys={case["keyid"]: case["public_key_pem"].encode()}, private_keys={}
    )
    verifier = HTTPMessageVerifier(signature_algorithm=algorithm(case["alg"]), key_resolver=resolver)
    results = verifier.verify(
        Request(case),
        require_components=case["covered"],
        body=case["body"].encode(),
    )
    if len(results) != 1:
        raise ValueError(f"expected one verified signature, got {len(results)}")
    r = results[0]
    return {
        "label": r.label,
        "covered": [k for k in r.covered_components if k != '"@signature-params"'],
        "signature_params": r.covered_components.get('"@signature-params"'),
        "parameters": r.parameters,
        "body_verified": r.body is not None,
    }


def sign(case):
    from http_message_signatures import HTTPMessageSigner, MappingKeyResolver

    resolver = MappingKeyResolver(
        public_keys={}, private_keys={case["keyid"]: case["private_key_pem"].encode()}
    )
    signer = HTTPMessageSigner(signature_algorithm=algorithm(case["alg"]), key_resolver=resolver)
    request = Request(case)
    signer.sign(
        request,
        key_id=case["keyid"],
        label=case["label"],
        covered_component_ids=case["covered"],
        body=case["body"].encode(),
    )
    return {"headers": [list(p) for p in request.headers.items()]}


def components(case):
    from http_message_signatures import HTTPMessageSigner

    signer = HTTPMessageSigner(signature_algorithm=algorithm("ed25519"))
    values = []
    for request in case["requests"]:
        row = {}
        for component in case["components"]:
            try:
                prepared = signer.prepare(
                    Request(request),
                    key_id="k",
                    include_alg=False,
                    covered_component_ids=[component],
                )
                line = prepared.signature_base.decode().split("\n", 1)[0]
                row[component] = {"value": line.split(": ", 1)[1]}
            except Exception as e:  # noqa: BLE001 - the library's refusal is the result
                row[component] = {"error": f"{type(e).__name__}: {e}"}
        values.append(row)
    return {"values": values}


MODES = {"verify": verify, "sign": sign, "components": components}


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in MODES:
        print(__doc__, file=sys.stderr)
        return EXIT_USAGE
    mode, path = sys.argv[1], sys.argv[2]
    out = {"library": PACKAGE, "mode": mode, "ok": False}
    if importlib.util.find_spec("http_message_signatures") is None:
        out["error"] = f"the Python package `{PACKAGE}` is not installed"
        out["missing"] = PACKAGE
        print(json.dumps(out))
        return EXIT_MISSING
    out["version"] = importlib.metadata.version(PACKAGE)
    try:
        with open(path, encoding="utf-8") as f:
            case = json.load(f)
        out.update(MODES[mode](case))
    except Exception as e:  # noqa: BLE001 - a rejection is reported like any failure
        out["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(out))
        return EXIT_FAILED
    out["ok"] = True
    print(json.dumps(out))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
