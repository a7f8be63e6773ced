"""Checks the deployment examples in contrib/ against the server they deploy: every MCP_*
variable they set is one the server reads (.env.example lists them, and a test ties that list
to the command line), the fleet size equals the number of instances, every instance is probed
on /health, the shared state secret is mounted readable by its owner only, and the compose
fleet's HAProxy configuration parses (`haproxy -c`). Docker and Kubernetes are not run here.
"""

import re
import subprocess
import sys

import yaml

ROOT = sys.argv[1] if len(sys.argv) > 1 else "."
known = set(re.findall(r"MCP_[A-Z0-9_]+", open(f"{ROOT}/.env.example").read()))
problems = []


def check_env(where, names):
    for name in names:
        if name.startswith("MCP_") and name not in known:
            problems.append(f"{where}: {name} is not a variable the server reads")


# Kubernetes
docs = [d for d in yaml.safe_load_all(open(f"{ROOT}/contrib/kubernetes/secure-mcp-server.yaml")) if d]
mcp = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "secure-mcp-server")
spec = mcp["spec"]["template"]["spec"]
container = spec["containers"][0]
env = {e["name"]: e.get("value") for e in container["env"]}
check_env("kubernetes", env)
if env.get("MCP_FLEET_SIZE") != str(mcp["spec"]["replicas"]):
    problems.append("kubernetes: MCP_FLEET_SIZE differs from the replicas")
if container["readinessProbe"]["httpGet"]["path"] != "/health":
    problems.append("kubernetes: readiness is not probed on /health")
secret = next(v for v in spec["volumes"] if v["name"] == "credentials")["secret"]
if secret.get("defaultMode", 0o644) & 0o077:
    problems.append("kubernetes: the state secret would be readable by group or others")
if "redis" not in env.get("MCP_REDIS_URL", ""):
    problems.append("kubernetes: MCP_REDIS_URL does not name the Redis service")

# compose
compose = yaml.safe_load(open(f"{ROOT}/contrib/compose/compose.yaml"))
instances = [s for name, s in compose["services"].items() if name.startswith("mcp-")]
for service in instances:
    check_env("compose", service["environment"])
    if service["environment"].get("MCP_FLEET_SIZE") != str(len(instances)):
        problems.append("compose: MCP_FLEET_SIZE differs from the number of instances")
    modes = {s["source"]: s.get("mode", 0o444) for s in service["secrets"]}
    if modes.get("state-secret", 0o444) & 0o077:
        problems.append("compose: the state secret would be readable by group or others")
haproxy = subprocess.run(["haproxy", "-c", "-f", f"{ROOT}/contrib/compose/haproxy.cfg"],
                         capture_output=True, text=True)
if haproxy.returncode != 0:
    problems.append(f"compose: haproxy.cfg does not parse: {haproxy.stderr.strip()}")
servers = re.findall(r"^\s*server (mcp-\d)", open(f"{ROOT}/contrib/compose/haproxy.cfg").read(), re.M)
if len(servers) != len(instances):
    problems.append("compose: haproxy.cfg does not list every instance")

for p in problems:
    print(f"contrib: {p}")
print(f"contrib: {'FAIL' if problems else 'ok'} (kubernetes: {len(docs)} objects; compose: "
      f"{len(instances)} instances)")
sys.exit(1 if problems else 0)
