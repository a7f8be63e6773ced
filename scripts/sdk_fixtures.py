"""Drives the fixtures server (examples/everything) with the official MCP Python SDK client
(mcp 2.x): list tools, call a tool with progress, read a resource, get a prompt, and answer an
elicitation (legacy: a server-to-client request; default mode: an input-required retry).

Usage: python scripts/sdk_fixtures.py URL KEY MODE   (MODE: auto or legacy)
"""

import asyncio
import sys

from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main(url: str, key: str, mode: str) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async def on_elicit(context, params):  # answers the fixture's elicitation
        from mcp.types import ElicitResult

        return ElicitResult(action="accept", content={"name": "Ada", "username": "ada", "email": "ada@example.com"})

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, elicitation_callback=on_elicit) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "test_tool_with_progress" in tools, tools
            result = await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
            assert not result.is_error, result
            assert len(progress) >= 3 and progress == sorted(progress), progress
            read = await client.read_resource("test://static-text")
            assert "static text resource" in read.contents[0].text, read
            prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "alpha", "arg2": "beta"})
            text = prompt.messages[0].content.text
            assert "alpha" in text and "beta" in text, text
            if mode == "legacy":
                asked = await client.call_tool("test_elicitation", {"message": "who are you?"})
            else:
                asked = await client.call_tool("test_input_required_result_elicitation", {})
            assert not asked.is_error, asked
            print(f"{mode}: ok ({len(tools)} tools; {len(progress)} progress notifications; resource, prompt, elicitation)")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
