"""An MCP client that is not Sigil's: the official Python SDK (`mcp`, PyPI), against a Sigil node.

It authenticates the way the MCP authorization spec defines for machine clients: the SDK discovers the node's
protected-resource and authorization-server metadata after a 401, gets a token with client_credentials and a
private_key_jwt assertion (EdDSA, signed with the caller's Ed25519 key), then initializes, lists tools and calls
them. Run by node/tests/it/mcp.rs, which checks what it prints (one JSON object per line) against the ledger.

usage: interop.py MCP_URL CERT_PEM KEY_FILE LABEL ISSUER CALLS_JSON
  CERT_PEM   the node's certificate, checked by `sigil mcp pin` (the client trusts that file)
  KEY_FILE   the caller's seed, 64 hex digits (`sigil keys generate`)
  ISSUER     the pod's authorization server (https://HOST:PORT/oauth/POD): the only one the client trusts
  CALLS_JSON a list of [tool, arguments] to call in order
"""

import asyncio
import json
import ssl
import sys

import httpx2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mcp import ClientSession
from mcp.client.auth.extensions.client_credentials import PrivateKeyJWTOAuthProvider, SignedJWTParameters
from mcp.client.streamable_http import streamable_http_client


class Memory:
    """Token storage for one run."""

    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, info):
        self.client = info


def emit(**kv):
    print(json.dumps(kv), flush=True)


async def main(url, cert, key_file, label, issuer, calls):
    seed = bytes.fromhex(open(key_file).read().strip())
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    client_id = "ed25519:" + public.hex()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    base = url.rsplit("/mcp", 1)[0]
    auth = PrivateKeyJWTOAuthProvider(
        server_url=url,
        storage=Memory(),
        client_id=client_id,
        assertion_provider=SignedJWTParameters(
            issuer=client_id, subject=client_id, signing_key=pem, signing_algorithm="EdDSA"
        ).create_assertion_provider(),
        issuer=issuer,
    )
    tls = ssl.create_default_context(cafile=cert)
    async with httpx2.AsyncClient(auth=auth, verify=tls, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                init = await session.initialize()
                caps = init.capabilities.model_dump(by_alias=True, exclude_none=True)
                emit(
                    label=label,
                    event="initialized",
                    caller=client_id,
                    server=init.server_info.name if init.server_info else None,
                    protocol=init.protocol_version,
                    attestation=(caps.get("extensions") or {}).get("io.sigil/attestation"),
                    instructions=init.instructions,
                    base=base,
                )
                tools = await session.list_tools()
                emit(
                    label=label,
                    event="tools",
                    tools=[
                        {"name": t.name, "description": t.description, "schema": t.input_schema}
                        for t in tools.tools
                    ],
                )
                for name, args in calls:
                    r = await session.call_tool(name, args)
                    emit(
                        label=label,
                        event="called",
                        tool=name,
                        is_error=bool(r.is_error),
                        text=[c.text for c in r.content if getattr(c, "text", None) is not None],
                        structured=r.structured_content,
                        meta=r.meta,
                    )


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    asyncio.run(main(*sys.argv[1:6], json.loads(sys.argv[6])))
