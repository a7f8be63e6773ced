//! A server carrying the official MCP conformance suites' fixtures, built on the library's
//! public API (the same `Tool`, `Prompt` and `ResourceProvider` traits the built-in tools use)
//! with every security layer of the real server. The shipped binary does not carry them.
//!
//! Usage: `cargo run --example everything -- [the server's own flags]`, e.g.
//! `--api-key KEY --rate-limit 100000 --bind 127.0.0.1:0`.

mod tasks;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use secure_mcp_server::app::AppState;
use secure_mcp_server::config::{Cli, Config};
use secure_mcp_server::error::RpcError;
use secure_mcp_server::mcp::dispatch::McpServerBuilder;
use secure_mcp_server::mcp::events::{Change, LogLevel};
use secure_mcp_server::mcp::prompts::{
    Prompt, PromptArgument, PromptDefinition, PromptFuture, PromptOutput, PromptRegistry,
};
use secure_mcp_server::mcp::request_state::{StateSealer, read_secret_file};
use secure_mcp_server::mcp::resources::{BoxFuture, Page, ResourceProvider, Resources};
use secure_mcp_server::server;
use secure_mcp_server::tools::registry::{
    Tool, ToolContext, ToolDefinition, ToolError, ToolFuture, ToolOutput, ToolRegistry,
};
use serde_json::{Map, Value, json};

const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
const WAV_EMPTY: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=";

type ToolFn = fn(Map<String, Value>, ToolContext) -> ToolFuture;

/// A fixture tool: a definition and a function.
struct Fixture {
    name: &'static str,
    description: &'static str,
    schema: Value,
    requires: &'static [&'static str],
    run: ToolFn,
}

impl Tool for Fixture {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: self.name,
            title: self.name,
            description: self.description,
            input_schema: self.schema.clone(),
            read_only: true,
            requires_client: self.requires,
        }
    }
    fn call(&self, arguments: Map<String, Value>, ctx: ToolContext) -> ToolFuture {
        (self.run)(arguments, ctx)
    }
}

fn no_args() -> Value {
    json!({ "type": "object", "properties": {} })
}

fn string_arg(name: &str) -> Value {
    json!({ "type": "object", "properties": { name: { "type": "string" } }, "required": [name] })
}

fn text(t: impl Into<String>) -> Value {
    json!({ "type": "text", "text": t.into() })
}

fn elicit(message: &str, field: &str, kind: &str) -> Value {
    json!({ "method": "elicitation/create", "params": {
        "message": message,
        "requestedSchema": { "type": "object", "properties": { field: { "type": kind } }, "required": [field] }
    }})
}

fn sample(prompt: &str, max_tokens: u32) -> Value {
    json!({ "method": "sampling/createMessage", "params": {
        "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
        "maxTokens": max_tokens
    }})
}

fn requests(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn ok(output: ToolOutput) -> ToolFuture {
    Box::pin(async move { Ok(output) })
}

fn tools() -> Vec<Fixture> {
    vec![
        Fixture {
            name: "test_simple_text",
            description: "Returns simple text",
            schema: no_args(),
            requires: &[],
            run: |_, _| {
                ok(ToolOutput::text(
                    "This is a simple text response for testing.",
                ))
            },
        },
        Fixture {
            name: "test_image_content",
            description: "Returns an image",
            schema: no_args(),
            requires: &[],
            run: |_, _| {
                ok(ToolOutput::content(vec![
                    json!({ "type": "image", "data": PNG_1X1, "mimeType": "image/png" }),
                ]))
            },
        },
        Fixture {
            name: "test_audio_content",
            description: "Returns audio",
            schema: no_args(),
            requires: &[],
            run: |_, _| {
                ok(ToolOutput::content(vec![
                    json!({ "type": "audio", "data": WAV_EMPTY, "mimeType": "audio/wav" }),
                ]))
            },
        },
        Fixture {
            name: "test_embedded_resource",
            description: "Returns an embedded resource",
            schema: no_args(),
            requires: &[],
            run: |_, _| {
                ok(ToolOutput::content(vec![
                    json!({ "type": "resource", "resource": {
                "uri": "test://embedded-resource", "mimeType": "text/plain", "text": "This is an embedded resource content." } }),
                ]))
            },
        },
        Fixture {
            name: "test_multiple_content_types",
            description: "Returns text, image and a resource",
            schema: no_args(),
            requires: &[],
            run: |_, _| {
                ok(ToolOutput::content(vec![
                    text("Multiple content types test:"),
                    json!({ "type": "image", "data": PNG_1X1, "mimeType": "image/png" }),
                    json!({ "type": "resource", "resource": { "uri": "test://mixed-content-resource", "mimeType": "application/json", "text": "{\"test\":\"data\",\"value\":123}" } }),
                ]))
            },
        },
        Fixture {
            name: "test_error_handling",
            description: "Always fails",
            schema: no_args(),
            requires: &[],
            run: |_, _| {
                Box::pin(async {
                    Err(ToolError::Failed(
                        "This tool intentionally returns an error for testing",
                    ))
                })
            },
        },
        Fixture {
            name: "test_tool_with_logging",
            description: "Logs three messages",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                Box::pin(async move {
                    for (i, m) in [
                        "Tool execution started",
                        "Tool processing data",
                        "Tool execution completed",
                    ]
                    .iter()
                    .enumerate()
                    {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        ctx.log(LogLevel::Info, "test_tool_with_logging", json!(m))
                            .await;
                    }
                    Ok(ToolOutput::text("Tool with logging executed successfully"))
                })
            },
        },
        Fixture {
            name: "test_logging_tool",
            description: "Logs, if the client asked for logs",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                Box::pin(async move {
                    ctx.log(LogLevel::Info, "test_logging_tool", json!("a log message"))
                        .await;
                    Ok(ToolOutput::text("logged"))
                })
            },
        },
        Fixture {
            name: "test_tool_with_progress",
            description: "Reports progress",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                Box::pin(async move {
                    for (i, p) in [0.0, 50.0, 100.0].iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        ctx.progress(*p, Some(100.0), None).await;
                    }
                    Ok(ToolOutput::text("Progress test completed"))
                })
            },
        },
        Fixture {
            name: "test_sampling",
            description: "Asks the client's model",
            schema: string_arg("prompt"),
            requires: &["sampling"],
            run: |args, ctx| {
                Box::pin(async move {
                    let prompt = args
                        .get("prompt")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let answer = ctx
                        .ask_client(
                            "sampling/createMessage",
                            sample(&prompt, 100)["params"].clone(),
                        )
                        .await?;
                    let reply = answer["content"]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    Ok(ToolOutput::text(format!("LLM response: {reply}")))
                })
            },
        },
        Fixture {
            name: "test_elicitation",
            description: "Asks the user",
            schema: string_arg("message"),
            requires: &["elicitation"],
            run: |args, ctx| {
                Box::pin(async move {
                    let message = args
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let answer = ctx.ask_client("elicitation/create", json!({ "message": message, "requestedSchema": {
                    "type": "object",
                    "properties": { "username": { "type": "string" }, "email": { "type": "string" } },
                    "required": ["username", "email"] } })).await?;
                    Ok(ToolOutput::text(format!(
                        "User response: action={}, content={}",
                        answer["action"], answer["content"]
                    )))
                })
            },
        },
        Fixture {
            name: "test_elicitation_sep1034_defaults",
            description: "Elicitation with defaults",
            schema: no_args(),
            requires: &["elicitation"],
            run: |_, ctx| {
                Box::pin(async move {
                    let answer = ctx.ask_client("elicitation/create", json!({ "message": "Please review your information", "requestedSchema": {
                    "type": "object", "properties": {
                        "name": { "type": "string", "default": "John Doe" },
                        "age": { "type": "integer", "default": 30 },
                        "score": { "type": "number", "default": 95.5 },
                        "status": { "type": "string", "enum": ["active", "inactive", "pending"], "default": "active" },
                        "verified": { "type": "boolean", "default": true } } } })).await?;
                    Ok(ToolOutput::text(format!(
                        "Elicitation completed: action={}, content={}",
                        answer["action"], answer["content"]
                    )))
                })
            },
        },
        Fixture {
            name: "test_elicitation_sep1330_enums",
            description: "Elicitation with enums",
            schema: no_args(),
            requires: &["elicitation"],
            run: |_, ctx| {
                Box::pin(async move {
                    let answer = ctx.ask_client("elicitation/create", json!({ "message": "Please choose", "requestedSchema": {
                    "type": "object", "properties": {
                        "untitledSingle": { "type": "string", "enum": ["option1", "option2", "option3"] },
                        "titledSingle": { "type": "string", "oneOf": [
                            { "const": "value1", "title": "First Option" }, { "const": "value2", "title": "Second Option" }, { "const": "value3", "title": "Third Option" }] },
                        "legacyEnum": { "type": "string", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"] },
                        "untitledMulti": { "type": "array", "items": { "type": "string", "enum": ["option1", "option2", "option3"] } },
                        "titledMulti": { "type": "array", "items": { "anyOf": [
                            { "const": "value1", "title": "First Choice" }, { "const": "value2", "title": "Second Choice" }, { "const": "value3", "title": "Third Choice" }] } } } } })).await?;
                    Ok(ToolOutput::text(format!(
                        "Elicitation completed: action={}, content={}",
                        answer["action"], answer["content"]
                    )))
                })
            },
        },
        Fixture {
            name: "json_schema_2020_12_tool",
            description: "Tool with JSON Schema 2020-12 features",
            schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                "$defs": { "address": { "$anchor": "addressDef", "type": "object", "properties": { "street": { "type": "string" }, "city": { "type": "string" } } } },
                "properties": { "name": { "type": "string" }, "address": { "$ref": "#/$defs/address" },
                    "contactMethod": { "type": "string", "enum": ["phone", "email"] }, "phone": { "type": "string" }, "email": { "type": "string" } },
                "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
                "if": { "properties": { "contactMethod": { "const": "phone" } }, "required": ["contactMethod"] },
                "then": { "required": ["phone"] }, "else": { "required": ["email"] },
                "additionalProperties": false }),
            requires: &[],
            run: |args, _| {
                ok(ToolOutput::text(format!(
                    "Received: {}",
                    Value::Object(args)
                )))
            },
        },
        Fixture {
            name: "test_header_param",
            description: "Mirrors its 'region' argument into the Mcp-Param-Region header",
            schema: json!({ "type": "object", "properties": { "region": { "type": "string", "x-mcp-header": "Region" } }, "required": ["region"] }),
            requires: &[],
            run: |args, _| {
                ok(ToolOutput::text(format!(
                    "region: {}",
                    args.get("region")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                )))
            },
        },
        Fixture {
            name: "test_missing_capability",
            description: "Needs the client's sampling capability",
            schema: no_args(),
            requires: &["sampling"],
            run: |_, _| ok(ToolOutput::text("the client declared sampling")),
        },
        Fixture {
            name: "test_streaming_elicitation",
            description: "Needs input from the user",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                Box::pin(async move {
                    ctx.progress(0.0, Some(1.0), Some("asking")).await;
                    if ctx.input_response("confirm").is_some() {
                        return Ok(ToolOutput::text("confirmed"));
                    }
                    Ok(ToolOutput::input_required(
                        requests(&[("confirm", elicit("Please confirm", "ok", "boolean"))]),
                        None,
                    ))
                })
            },
        },
        Fixture {
            name: "test_trigger_tool_change",
            description: "Announces a tools list change",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                ctx.changes.announce(Change::ToolsListChanged);
                ok(ToolOutput::text("tools changed"))
            },
        },
        Fixture {
            name: "test_trigger_prompt_change",
            description: "Announces a prompts list change",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                ctx.changes.announce(Change::PromptsListChanged);
                ok(ToolOutput::text("prompts changed"))
            },
        },
        Fixture {
            name: "test_input_required_result_elicitation",
            description: "Asks for the user's name",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                ok(
                    match ctx
                        .input_response("user_name")
                        .and_then(|r| r["content"]["name"].as_str())
                    {
                        Some(name) => ToolOutput::text(format!("Hello, {name}!")),
                        None => ToolOutput::input_required(
                            requests(&[(
                                "user_name",
                                elicit("What is your name?", "name", "string"),
                            )]),
                            None,
                        ),
                    },
                )
            },
        },
        Fixture {
            name: "test_input_required_result_sampling",
            description: "Asks the client's model",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                ok(
                    match ctx
                        .input_response("capital_question")
                        .and_then(|r| r["content"]["text"].as_str())
                    {
                        Some(answer) => ToolOutput::text(format!("The model said: {answer}")),
                        None => ToolOutput::input_required(
                            requests(&[(
                                "capital_question",
                                sample("What is the capital of France?", 100),
                            )]),
                            None,
                        ),
                    },
                )
            },
        },
        Fixture {
            name: "test_input_required_result_list_roots",
            description: "Asks for the client's roots",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                ok(
                    match ctx
                        .input_response("client_roots")
                        .and_then(|r| r["roots"].as_array())
                    {
                        Some(roots) => ToolOutput::text(format!(
                            "Roots: {}",
                            roots
                                .iter()
                                .filter_map(|r| r["uri"].as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                        None => ToolOutput::input_required(
                            requests(&[(
                                "client_roots",
                                json!({ "method": "roots/list", "params": {} }),
                            )]),
                            None,
                        ),
                    },
                )
            },
        },
        Fixture {
            name: "test_input_required_result_request_state",
            description: "Keeps state across rounds",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                ok(
                    match (ctx.state.as_deref(), ctx.input_response("confirm")) {
                        (Some("awaiting-confirm"), Some(_)) => {
                            ToolOutput::text("state-ok: confirmed")
                        }
                        _ => ToolOutput::input_required(
                            requests(&[("confirm", elicit("Please confirm", "ok", "boolean"))]),
                            Some("awaiting-confirm".into()),
                        ),
                    },
                )
            },
        },
        Fixture {
            name: "test_input_required_result_multiple_inputs",
            description: "Asks three things at once",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                ok({
                    let all = ["user_name", "greeting", "client_roots"]
                        .iter()
                        .all(|k| ctx.input_response(k).is_some());
                    if all && ctx.state.as_deref() == Some("multi") {
                        ToolOutput::text("all inputs received")
                    } else {
                        ToolOutput::input_required(
                            requests(&[
                                ("user_name", elicit("What is your name?", "name", "string")),
                                ("greeting", sample("Generate a greeting", 50)),
                                (
                                    "client_roots",
                                    json!({ "method": "roots/list", "params": {} }),
                                ),
                            ]),
                            Some("multi".into()),
                        )
                    }
                })
            },
        },
        Fixture {
            name: "test_input_required_result_multi_round",
            description: "Two rounds of questions",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                ok(
                    match (
                        ctx.state.as_deref(),
                        ctx.input_response("step1"),
                        ctx.input_response("step2"),
                    ) {
                        (Some("round-2"), _, Some(_)) => ToolOutput::text("both rounds complete"),
                        (Some("round-1"), Some(_), _) => ToolOutput::input_required(
                            requests(&[(
                                "step2",
                                elicit("Step 2: What is your favorite color?", "color", "string"),
                            )]),
                            Some("round-2".into()),
                        ),
                        _ => ToolOutput::input_required(
                            requests(&[(
                                "step1",
                                elicit("Step 1: What is your name?", "name", "string"),
                            )]),
                            Some("round-1".into()),
                        ),
                    },
                )
            },
        },
        Fixture {
            name: "test_input_required_result_tampered_state",
            description: "Rejects a tampered state",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                ok(match ctx.state.as_deref() {
                    Some("sealed") => ToolOutput::text("state verified"),
                    _ => ToolOutput::input_required(
                        requests(&[("confirm", elicit("Please confirm", "ok", "boolean"))]),
                        Some("sealed".into()),
                    ),
                })
            },
        },
        Fixture {
            name: "test_input_required_result_capabilities",
            description: "Asks only what the client supports",
            schema: no_args(),
            requires: &[],
            run: |_, ctx| {
                ok(
                    if ctx.input_response("question").is_some()
                        || ctx.input_response("name").is_some()
                    {
                        ToolOutput::text("answered")
                    } else {
                        ToolOutput::input_required(
                            requests(&[
                                ("name", elicit("What is your name?", "name", "string")),
                                ("question", sample("What is 2 + 2?", 10)),
                            ]),
                            None,
                        )
                    },
                )
            },
        },
    ]
}

struct TextPrompt {
    def: fn() -> PromptDefinition,
    get: fn(Map<String, Value>, ToolContext) -> PromptFuture,
}

impl Prompt for TextPrompt {
    fn definition(&self) -> PromptDefinition {
        (self.def)()
    }
    fn get(&self, arguments: Map<String, Value>, ctx: ToolContext) -> PromptFuture {
        (self.get)(arguments, ctx)
    }
    fn complete(&self, argument: &str, value: &str) -> Vec<String> {
        if argument != "arg1" {
            return Vec::new();
        }
        ["paris", "park", "party"]
            .iter()
            .filter(|v| v.starts_with(value))
            .map(|v| (*v).to_owned())
            .collect()
    }
}

fn user(content: Value) -> Value {
    json!({ "role": "user", "content": content })
}

fn prompts() -> PromptRegistry {
    let mut p = PromptRegistry::default();
    p.register(TextPrompt {
        def: || PromptDefinition { name: "test_simple_prompt", title: "Simple prompt", description: "A simple prompt without arguments", arguments: vec![] },
        get: |_, _| Box::pin(async { Ok(PromptOutput::messages(vec![user(text("This is a simple prompt for testing."))])) }),
    })
    .register(TextPrompt {
        def: || PromptDefinition { name: "test_prompt_with_arguments", title: "Prompt with arguments", description: "A prompt with required arguments",
            arguments: vec![PromptArgument { name: "arg1", description: "First test argument", required: true }, PromptArgument { name: "arg2", description: "Second test argument", required: true }] },
        get: |args, _| Box::pin(async move {
            let a = args.get("arg1").and_then(Value::as_str).unwrap_or_default();
            let b = args.get("arg2").and_then(Value::as_str).unwrap_or_default();
            Ok(PromptOutput::messages(vec![user(text(format!("Prompt with arguments: arg1='{a}', arg2='{b}'")))]))
        }),
    })
    .register(TextPrompt {
        def: || PromptDefinition { name: "test_prompt_with_embedded_resource", title: "Prompt with a resource", description: "A prompt embedding a resource",
            arguments: vec![PromptArgument { name: "resourceUri", description: "URI of the resource to embed", required: true }] },
        get: |args, _| Box::pin(async move {
            let uri = args.get("resourceUri").and_then(Value::as_str).unwrap_or_default().to_owned();
            Ok(PromptOutput::messages(vec![
                user(json!({ "type": "resource", "resource": { "uri": uri, "mimeType": "text/plain", "text": "Embedded resource content for testing." } })),
                user(text("Please process the embedded resource above.")),
            ]))
        }),
    })
    .register(TextPrompt {
        def: || PromptDefinition { name: "test_prompt_with_image", title: "Prompt with an image", description: "A prompt with an image", arguments: vec![] },
        get: |_, _| Box::pin(async {
            Ok(PromptOutput::messages(vec![
                user(json!({ "type": "image", "data": PNG_1X1, "mimeType": "image/png" })),
                user(text("Please analyze the image above.")),
            ]))
        }),
    })
    .register(TextPrompt {
        def: || PromptDefinition { name: "test_input_required_result_prompt", title: "Prompt needing context", description: "Asks for context first", arguments: vec![PromptArgument { name: "topic", description: "An optional topic", required: false }] },
        get: |_, ctx| Box::pin(async move {
            Ok(match ctx.input_response("user_context").and_then(|r| r["content"]["context"].as_str()) {
                Some(c) => PromptOutput::messages(vec![user(text(format!("Use this context: {c}")))]),
                None => PromptOutput {
                    input_required: Some(secure_mcp_server::tools::registry::InputRequired {
                        requests: requests(&[("user_context", elicit("What context should the prompt use?", "context", "string"))]),
                        state: None,
                    }),
                    ..PromptOutput::default()
                },
            })
        }),
    });
    p
}

/// The suites' `test://` resources.
struct TestResources;

impl ResourceProvider for TestResources {
    fn list<'a>(&'a self, _cursor: Option<&'a str>) -> BoxFuture<'a, Result<Page, RpcError>> {
        Box::pin(async {
            Ok((
                vec![
                    json!({ "uri": "test://static-text", "name": "static-text", "mimeType": "text/plain" }),
                    json!({ "uri": "test://static-binary", "name": "static-binary", "mimeType": "image/png" }),
                    json!({ "uri": "test://watched-resource", "name": "watched-resource", "mimeType": "text/plain" }),
                ],
                None,
            ))
        })
    }
    fn templates(&self) -> Vec<Value> {
        vec![
            json!({ "uriTemplate": "test://template/{id}/data", "name": "template", "mimeType": "application/json" }),
        ]
    }
    fn read<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<Option<Vec<Value>>, RpcError>> {
        Box::pin(async move {
            Ok(match uri {
                "test://static-text" => Some(vec![json!({ "uri": uri, "mimeType": "text/plain", "text": "This is the content of the static text resource." })]),
                "test://static-binary" => Some(vec![json!({ "uri": uri, "mimeType": "image/png", "blob": PNG_1X1 })]),
                "test://watched-resource" => Some(vec![json!({ "uri": uri, "mimeType": "text/plain", "text": "Watched resource content" })]),
                _ => uri
                    .strip_prefix("test://template/")
                    .and_then(|rest| rest.strip_suffix("/data"))
                    .filter(|id| !id.is_empty() && !id.contains('/'))
                    .map(|id| vec![json!({ "uri": uri, "mimeType": "application/json", "text": json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") }).to_string() })]),
            })
        })
    }
    fn supports_subscribe(&self) -> bool {
        true
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(64);
        }
    };
    let config = match Config::from_cli_with(cli, |name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("everything: {e}");
            return ExitCode::from(64);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MCP_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        return ExitCode::FAILURE;
    };
    // Inside the runtime: a fleet's Redis connection (--redis-url) belongs to it.
    let state = match runtime.block_on(async { AppState::from_config(&config) }) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("everything: {e}");
            return ExitCode::from(64);
        }
    };
    // The fixtures' server seals multi-round state with the fleet's secret, if one is given.
    let sealer = config
        .state_secret_file
        .as_deref()
        .and_then(|path| read_secret_file(path).ok())
        .map(|secret| StateSealer::from_secret(&secret));
    let served = runtime.block_on(async {
        let mut registry = ToolRegistry::new();
        for tool in tools() {
            registry.register(tool);
        }
        for tool in tasks::tools() {
            registry.register(tool);
        }
        let mut resources = Resources::default();
        resources.add(TestResources);
        let state = state.with_server(
            McpServerBuilder {
                tools: std::sync::Arc::new(registry),
                resources,
                prompts: prompts(),
                list_changed: true,
                instructions: Some("The MCP conformance fixtures.".into()),
                sealer,
                ..McpServerBuilder::default()
            }
            .build(),
        );
        let listener = server::bind(&config).await?;
        println!("listening on http://{}/mcp", listener.local_addr()?);
        server::serve(
            listener,
            state,
            server::limits(&config),
            server::shutdown_signal(),
        )
        .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("everything: {e}");
            ExitCode::FAILURE
        }
    }
}
