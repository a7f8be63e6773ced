"""Drives a gateway with the official MCP Python SDK client (mcp 2.x) and checks what an
upstream offers through it: usage `gateway_client.py URL KEY MODE PLAN`, MODE `auto` (2026-07-28,
server/discover) or `legacy` (initialize), PLAN one of `everything`, `filesystem`, `python`."""
import asyncio
import json
import sys

from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

url, key, mode, plan = sys.argv[1:5]


def texts(result):
    return [c.text for c in result.content if getattr(c, "type", "") == "text"]


async def run(session):
    tools = {t.name for t in (await session.list_tools()).tools}
    progress = []

    async def on_progress(p, total, message):
        progress.append(p)

    if plan == "everything":
        assert {"echo", "get-sum", "trigger-long-running-operation"} <= tools, tools
        assert texts(await session.call_tool("echo", {"message": "hi"})) == ["Echo: hi"]
        long = await session.call_tool("trigger-long-running-operation", {"duration": 1, "steps": 4},
                                       progress_callback=on_progress)
        assert not long.is_error, long
        assert len(progress) == 4, progress
        resources = (await session.list_resources()).resources
        assert resources, "resources"
        read = await session.read_resource(resources[0].uri)
        assert read.contents, read
        prompts = {p.name for p in (await session.list_prompts()).prompts}
        assert prompts, "prompts"
        return "%d tools, progress %d, %d resources, %d prompts" % (len(tools), len(progress), len(resources), len(prompts))
    if plan == "filesystem":
        assert {"read_text_file", "list_directory"} <= tools, tools
        listing = texts(await session.call_tool("list_directory", {"path": sys.argv[5]}))
        assert any("greeting.txt" in t for t in listing), listing
        read = texts(await session.call_tool("read_text_file", {"path": sys.argv[5] + "/greeting.txt"}))
        assert read == ["hello through the gateway\n"], read
        outside = await session.call_tool("read_text_file", {"path": "/etc/passwd"})
        assert outside.is_error, outside
        return "%d tools, read inside, refused outside" % len(tools)
    assert {"echo", "pid", "count"} <= tools, tools
    assert texts(await session.call_tool("echo", {"text": "hi"})) == ["hi"]
    counted = await session.call_tool("count", {"n": 3}, progress_callback=on_progress)
    assert texts(counted) == ["counted to 3"], counted
    assert len(progress) == 3, progress
    read = await session.read_resource("note://hello")
    assert read.contents[0].text == "hello from python", read
    prompt = await session.get_prompt("greet", {"who": "Ada"})
    assert "Ada" in json.dumps(prompt.model_dump(mode="json")), prompt
    return "%d tools, progress %d, resource, prompt" % (len(tools), len(progress))


async def main():
    http = create_mcp_http_client(headers={"Authorization": "Bearer " + key})
    async with http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode) as client:
            print("%s %s: ok (%s)" % (plan, mode, await run(client)))


asyncio.run(main())
