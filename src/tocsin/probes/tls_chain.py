"""What a TLS handshake taught: the version, the presented chain's expiries, and the
verified chain's, with the labels blackbox_exporter gives them.

blackbox reports `probe_ssl_last_chain_expiry_timestamp_seconds` (the earliest expiry of
the verified chain) and `probe_ssl_last_chain_info` (the leaf's fingerprint, subject,
issuer and names). Python exposes the verified chain only through a private accessor
on 3.11 (public as `get_verified_chain` from 3.13). Names are written as Go's
`pkix.Name.String` writes them (RFC 2253 order, short attribute names), so a dashboard
that matches on `subject` keeps matching.
"""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

from .result import Attempt

TLS_VERSIONS = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}
_SHORT_NAMES = {
    "commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
    "localityName": "L", "stateOrProvinceName": "ST", "streetAddress": "STREET", "postalCode": "POSTALCODE",
    "serialNumber": "SERIALNUMBER",
}
_DER = 2  # _ssl.ENCODING_DER, which the ssl module does not export
_ESCAPED = {",", "+", '"', "\\", "<", ">", ";"}


def go_tls_version(version: str) -> str:
    """`TLSv1.3` as Go names it (`TLS 1.3`)."""
    return TLS_VERSIONS.get(version, version)


def _escape(value: str) -> str:
    out = "".join(f"\\{c}" if c in _ESCAPED else c for c in value)
    if out.startswith((" ", "#")):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out


def go_name(rdns: Any) -> str:
    """A subject or issuer from `get_info()` as Go's pkix.Name.String() writes it."""
    parts = []
    for rdn in reversed(rdns or ()):
        parts.append("+".join(f"{_SHORT_NAMES.get(key, key)}={_escape(value)}" for key, value in rdn))
    return ",".join(parts)


def _expiry(info: dict) -> float:
    return float(ssl.cert_time_to_seconds(info["notAfter"]))


def _chain(ssl_object: ssl.SSLObject, getter: str) -> list:
    method = getattr(ssl_object, getter, None) or getattr(getattr(ssl_object, "_sslobj", None), getter, None)
    if method is None:
        return []
    try:
        return list(method() or [])
    except (ssl.SSLError, ValueError):
        return []


def record_handshake(ssl_object: ssl.SSLObject, attempt: Attempt) -> None:
    """The version, the presented chain's expiries and, when verified, the verified chain's."""
    attempt.info["tls_version"] = go_tls_version(ssl_object.version() or "")
    presented = _chain(ssl_object, "get_unverified_chain")
    if presented:
        expiries = [_expiry(cert.get_info()) for cert in presented]
        attempt.facts["ssl_leaf_cert_expiry"] = expiries[0]
        attempt.facts["ssl_earliest_cert_expiry"] = min(expiries)
    if ssl_object.context.verify_mode == ssl.CERT_NONE:
        return  # nothing was verified: no last chain (blackbox says year 1 here)
    verified = _chain(ssl_object, "get_verified_chain")
    if not verified:
        return
    infos = [cert.get_info() for cert in verified]
    attempt.facts["ssl_last_chain_expiry_timestamp_seconds"] = min(_expiry(info) for info in infos)
    leaf = infos[0]
    attempt.info["last_chain_fingerprint"] = hashlib.sha256(verified[0].public_bytes(_DER)).hexdigest()
    attempt.info["last_chain_subject"] = go_name(leaf.get("subject"))
    attempt.info["last_chain_issuer"] = go_name(leaf.get("issuer"))
    attempt.info["last_chain_sans"] = ",".join(value for kind, value in leaf.get("subjectAltName", ())
                                               if kind == "DNS")
