// Drives a server with the official MCP TypeScript SDK client over Streamable HTTP, with the
// Bearer header: list tools, call a tool with progress, read a resource, get a prompt; and
// checks that a wrong key is refused.
// Usage: TS_SDK_DIR=DIR node scripts/ts_client.mjs URL KEY
import assert from 'node:assert/strict';

const [url, key] = process.argv.slice(2);
const base = `${process.env.TS_SDK_DIR}/node_modules/@modelcontextprotocol/sdk/dist/esm`;
const { Client } = await import(`${base}/client/index.js`);
const { StreamableHTTPClientTransport } = await import(`${base}/client/streamableHttp.js`);

const connect = async (bearer) => {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${bearer}` } },
  });
  const client = new Client({ name: 'secure-mcp-server-interop', version: '1.0.0' });
  await client.connect(transport);
  return client;
};

const client = await connect(key);
const { tools } = await client.listTools();
assert.ok(tools.some((t) => t.name === 'test_tool_with_progress'));
const progress = [];
const result = await client.callTool({ name: 'test_tool_with_progress', arguments: {} }, undefined, {
  onprogress: (p) => progress.push(p.progress),
});
assert.ok(!result.isError);
assert.ok(progress.length >= 3, `progress: ${progress}`);
const read = await client.readResource({ uri: 'test://static-text' });
assert.match(read.contents[0].text, /static text resource/);
const prompt = await client.getPrompt({ name: 'test_prompt_with_arguments', arguments: { arg1: 'alpha', arg2: 'beta' } });
assert.match(prompt.messages[0].content.text, /alpha.*beta/);
await client.close();

let refused = false;
try {
  await connect('smcp_not-a-valid-key-000000000000000000000000000');
} catch {
  refused = true;
}
assert.ok(refused, 'a wrong key must be refused');
console.log(`typescript: ok (${tools.length} tools; ${progress.length} progress notifications; resource, prompt; wrong key refused)`);
