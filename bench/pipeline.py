"""Sends N pipelined requests on one connection and waits for N responses (for callgrind runs,
where a fixed request count matters more than speed).

Usage: python3 bench/pipeline.py HOST PORT N (health|list|call) KEY
  call: a 2026 tools/call of test_simple_text (the fixtures server, examples/everything)
"""
import socket, sys
host, port, n, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
key = sys.argv[5]
meta = '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
if kind == "health":
    req = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
elif kind == "call":
    body = ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_simple_text","arguments":{},%s}}' % meta).encode()
    req = (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer " + key.encode() +
           b"\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: test_simple_text\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
else:
    body = ('{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{%s}}' % meta).encode()
    req = (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer " + key.encode() +
           b"\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
s = socket.create_connection((host, port))
done = 0
buf = b""
batch = 50
sent = 0
while done < n:
    if sent - done < batch and sent < n:
        k = min(batch, n - sent)
        s.sendall(req * k); sent += k
    data = s.recv(1 << 20)
    if not data: break
    buf += data
    done = buf.count(b"HTTP/1.1 ")
print("responses", done)
