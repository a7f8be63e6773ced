"""A small MCP server on the official Python SDK's high-level API (mcp 2.x `MCPServer`, the
former FastMCP), over stdio: the Python upstream of scripts/gateway-interop.sh."""
import asyncio
import os
import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("python-upstream")
# --description-file PATH: echo's description is read from PATH at start (a test changes it).
DESCRIPTION = "Echoes its text."
if "--description-file" in sys.argv:
    with open(sys.argv[sys.argv.index("--description-file") + 1]) as f:
        DESCRIPTION = f.read().strip()
CANCELLED = []


@server.tool(description=DESCRIPTION)
def echo(text: str) -> str:
    return text


@server.tool()
def pid() -> str:
    """This process's id."""
    return str(os.getpid())


@server.tool()
async def count(n: int, ctx: Context) -> str:
    """Counts to n, reporting progress."""
    try:
        for i in range(n):
            await ctx.report_progress(i + 1, n)
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        CANCELLED.append(n)
        raise
    return "counted to %d" % n


@server.tool()
def cancelled() -> str:
    """The counts cancelled so far."""
    return ",".join(str(n) for n in CANCELLED)


@server.resource("note://hello")
def hello() -> str:
    """A note."""
    return "hello from python"


@server.prompt()
def greet(who: str) -> str:
    """Greets someone."""
    return "Greet %s warmly." % who


if __name__ == "__main__":
    server.run("stdio")
