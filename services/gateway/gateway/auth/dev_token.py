"""`make token EMAIL=a@example.com ROLE=user`: print a development bearer token."""

from __future__ import annotations

import argparse

from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--email", required=True)
    parser.add_argument("--role", choices=["user", "subscriber", "admin"], default="user")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires")
    args = parser.parse_args()
    settings = GatewaySettings()
    if settings.environment != "development":
        parser.error("the development issuer exists only with ENVIRONMENT=development")
    if settings.clerk_enabled:
        parser.error("CLERK_ISSUER is set: the gateway accepts Clerk tokens only, not development ones")
    issuer = DevIssuer(issuer=settings.dev_issuer, key_file=settings.dev_issuer_key_file)
    print(issuer.token(email=args.email, role=args.role, ttl_s=args.ttl))


if __name__ == "__main__":
    main()
