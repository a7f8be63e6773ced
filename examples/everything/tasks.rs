//! The fixtures of the conformance suite's `tasks-*` scenarios (2026-07-28 tasks extension),
//! registered through the public API: each says through `Tool::task_support` whether it may or
//! must run as a task, and asks the client through `ToolContext::ask_client` (which, in a task,
//! turns it `input_required` until `tasks/update` answers).

use std::time::Duration;

use secure_mcp_server::tools::registry::{
    TaskSupport, Tool, ToolContext, ToolDefinition, ToolError, ToolFuture, ToolOutput,
};

use crate::{Fixture, ToolFn};
use serde_json::{Map, Value, json};

/// A fixture tool and how it runs as a task.
pub struct TaskFixture(Fixture, TaskSupport);

impl Tool for TaskFixture {
    fn definition(&self) -> ToolDefinition {
        self.0.definition()
    }
    fn call(&self, arguments: Map<String, Value>, ctx: ToolContext) -> ToolFuture {
        self.0.call(arguments, ctx)
    }
    fn task_support(&self) -> TaskSupport {
        self.1
    }
}

/// A fixture that runs as a task as `support` says.
fn fixture(
    name: &'static str,
    description: &'static str,
    schema: Value,
    support: TaskSupport,
    run: ToolFn,
) -> TaskFixture {
    TaskFixture(
        Fixture {
            name,
            description,
            schema,
            requires: &[],
            run,
        },
        support,
    )
}

fn confirm_schema(field: &str, kind: &str) -> Value {
    json!({ "type": "object", "properties": { field: { "type": kind } }, "required": [field] })
}

/// Asks the client to fill in a form with one field.
async fn elicit(ctx: &ToolContext, message: &str, field: &str, kind: &str) -> Option<Value> {
    let answer = ctx
        .ask_client(
            "elicitation/create",
            json!({ "message": message, "requestedSchema": confirm_schema(field, kind) }),
        )
        .await
        .ok()?;
    (answer["action"] == "accept").then(|| answer["content"].clone())
}

pub fn tools() -> Vec<TaskFixture> {
    vec![
        fixture(
            "greet",
            "Greets at once; never a task",
            json!({ "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] }),
            TaskSupport::Forbidden,
            |args, _| {
                Box::pin(async move {
                    let name = args
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    Ok(ToolOutput::text(format!("Hello, {name}!")))
                })
            },
        ),
        fixture(
            "slow_compute",
            "Sleeps for 'seconds'; a task when the client offers tasks",
            json!({ "type": "object", "properties": {
                "seconds": { "type": "number", "minimum": 0, "maximum": 600 },
                "label": { "type": "string" }
            }, "required": ["seconds"] }),
            TaskSupport::Optional,
            |args, _| {
                Box::pin(async move {
                    let seconds = args.get("seconds").and_then(Value::as_f64).unwrap_or(0.0);
                    let label = args
                        .get("label")
                        .and_then(Value::as_str)
                        .unwrap_or("job")
                        .to_owned();
                    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
                    Ok(ToolOutput::text(format!("{label}: done after {seconds} s")))
                })
            },
        ),
        fixture(
            "failing_job",
            "Always a task; fails as a tool after about a second",
            json!({ "type": "object", "properties": {} }),
            TaskSupport::Required,
            |_, _| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Err(ToolError::Failed("the job failed"))
                })
            },
        ),
        fixture(
            "protocol_error_job",
            "Always a task; fails inside the server",
            json!({ "type": "object", "properties": {} }),
            TaskSupport::Required,
            |_, _| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Err(ToolError::Internal)
                })
            },
        ),
        fixture(
            "confirm_delete",
            "Always a task; asks for confirmation before 'deleting'",
            json!({ "type": "object", "properties": { "filename": { "type": "string" } }, "required": ["filename"] }),
            TaskSupport::Required,
            |args, ctx| {
                Box::pin(async move {
                    let file = args
                        .get("filename")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let message = format!("Delete {file}?");
                    let answer = elicit(&ctx, &message, "confirm", "boolean").await;
                    Ok(ToolOutput::text(match answer {
                        Some(content) if content["confirm"] == true => format!("Deleted {file}"),
                        _ => format!("Kept {file}"),
                    }))
                })
            },
        ),
        fixture(
            "multi_input",
            "Always a task; asks two questions at once",
            json!({ "type": "object", "properties": {} }),
            TaskSupport::Required,
            |_, ctx| {
                Box::pin(async move {
                    let (first, second) = tokio::join!(
                        elicit(&ctx, "First name?", "name", "string"),
                        elicit(&ctx, "Second name?", "name", "string"),
                    );
                    let name = |v: Option<Value>| {
                        v.and_then(|c| c["name"].as_str().map(str::to_owned))
                            .unwrap_or_default()
                    };
                    Ok(ToolOutput::text(format!(
                        "Got {} and {}",
                        name(first),
                        name(second)
                    )))
                })
            },
        ),
        fixture(
            "test_tool_with_task",
            "Asks for a name before it starts (input required), then runs as a task",
            json!({ "type": "object", "properties": {} }),
            TaskSupport::Required,
            |_, ctx| {
                Box::pin(async move {
                    let name = ctx
                        .input_response("name")
                        .and_then(|r| r["content"]["name"].as_str())
                        .map(str::to_owned);
                    let Some(name) = name else {
                        let ask = json!({ "method": "elicitation/create", "params": {
                            "message": "Whose report?",
                            "requestedSchema": confirm_schema("name", "string")
                        }});
                        let requests = [("name".to_owned(), ask)].into_iter().collect();
                        return Ok(ToolOutput::input_required(requests, None));
                    };
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Ok(ToolOutput::text(format!("Report for {name} is ready")))
                })
            },
        ),
    ]
}
