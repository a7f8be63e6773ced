"""A small MCP server on the official Python SDK's high-level API (mcp 2.x `MCPServer`, the
former FastMCP), over stdio: the Python upstream of scripts/gateway-interop.sh."""
import asyncio
import os

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("python-upstream")


@server.tool()
def echo(text: str) -> str:
    """Echoes its text."""
    return text


@server.tool()
def pid() -> str:
    """This process's id."""
    return str(os.getpid())


@server.tool()
async def count(n: int, ctx: Context) -> str:
    """Counts to n, reporting progress."""
    for i in range(n):
        await ctx.report_progress(i + 1, n)
        await asyncio.sleep(0.05)
    return "counted to %d" % n


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
