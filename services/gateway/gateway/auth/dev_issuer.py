"""A local RS256 token issuer for development, standing in for Clerk until it is configured.

Its private key lives in a file (created on first use) shared by `make token` and the
gateway; the gateway verifies with the public half, exposed as a JWKS in development only.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from common.contracts import Role


class DevIssuer:
    def __init__(self, *, issuer: str, key_file: Path) -> None:
        self.issuer = issuer
        self._key = _load_or_create_key(key_file)
        public_jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        self.kid = hashlib.sha256(json.dumps(public_jwk, sort_keys=True).encode()).hexdigest()[:16]
        self.jwks: dict[str, Any] = {"keys": [{**public_jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}
        self.public_key = self._key.public_key()

    def token(
        self, *, email: str, role: Role | None, ttl_s: int = 3600, now: float | None = None, **claims: Any
    ) -> str:
        issued = int(now if now is not None else time.time())
        payload = {
            "sub": "dev_" + hashlib.sha256(email.lower().encode()).hexdigest()[:16],
            "email": email,
            "iss": self.issuer,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl_s,
            **claims,
        }
        if role is not None:  # without one, the users collection decides (as for a Clerk token)
            payload["role"] = role
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": self.kid})


def _load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(pem)
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)  # atomic: if another process created it first, use theirs
    except FileExistsError:
        tmp.unlink()
        return _load_or_create_key(path)
    tmp.unlink()
    return key
