"""Drives a running secure-mcp-server with the official MCP Python SDK client (mcp 2.x).

Usage: python scripts/sdk_client.py URL KEY MODE FILE_PATH EXPECTED_TEXT
  MODE is "auto" (the SDK's default: probe server/discover, 2026-07-28) or "legacy"
  (the initialize handshake). Exits non-zero if any step fails.
"""

import asyncio
import sys

from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main(url: str, key: str, mode: str, path: str, expected: str) -> None:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode) as client:
            tools = await client.list_tools()
            names = sorted(t.name for t in tools.tools)
            assert "read_file" in names, names
            result = await client.call_tool("read_file", {"path": path})
            assert not result.is_error, result
            text = result.content[0].text
            assert text == expected, text
            bad = await client.call_tool("read_file", {"path": "/etc/passwd"})
            assert bad.is_error, bad
            resources = await client.list_resources()
            uris = [str(r.uri) for r in resources.resources]
            assert uris, "no resources listed"
            read = await client.read_resource(uris[0])
            assert read.contents, read
            print(f"{mode}: ok ({len(names)} tools: {', '.join(names)}; {len(uris)} resources)")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
