"""A throwaway identity provider for scripts/sdk-interop.sh: an EC P-256 key made at start, its
RFC 8414 metadata and JWKS served on a loopback port, and one access token for AUDIENCE
written to TOKEN_FILE. Prints `issuer http://127.0.0.1:PORT` once it serves; runs until killed.

    python oauth_issuer.py AUDIENCE TOKEN_FILE
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

audience, token_file = sys.argv[1], sys.argv[2]
key = ec.generate_private_key(ec.SECP256R1())
public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
public.update({"kid": "interop-1", "use": "sig", "alg": "ES256"})


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/.well-known/oauth-authorization-server":
            body = {"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}
        elif self.path == "/jwks":
            body = {"keys": [public]}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "max-age=300")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
issuer = f"http://127.0.0.1:{server.server_address[1]}"
now = int(time.time())
token = jwt.encode({"iss": issuer, "sub": "interop-user", "aud": audience, "iat": now,
                    "exp": now + 600, "scope": "mcp:tools"}, key, algorithm="ES256",
                   headers={"kid": "interop-1", "typ": "at+jwt"})
with open(token_file, "w") as f:
    f.write(token)
print(f"issuer {issuer}", flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
threading.Event().wait()
