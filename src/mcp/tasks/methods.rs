//! `tasks/get`, `tasks/update` and `tasks/cancel` (2026-07-28 tasks extension). The transport
//! has already checked the headers (`Mcp-Name` must equal `params.taskId`) and `_meta`; here,
//! in this order: the request declares the extension (else `-32021`, before any lookup, so an
//! undeclared client learns nothing about ids), the params have their shape (`-32602`), and
//! the task exists for this caller (`-32602` "unknown task" alike for an id that never
//! existed, one that expired, one of another principal, and one of a tool the caller's policy
//! no longer allows).

use serde_json::{Map, Value, json};

use super::{Forwarded, TaskStore, declared, missing_extension};
use crate::error::RpcError;
use crate::mcp::jsonrpc::string_param;
use crate::mcp::method::Method;
use crate::security::key_policy::KeyRules;
use crate::security::principal::Principal;

fn unknown() -> RpcError {
    RpcError::InvalidParams("unknown task".into())
}

/// Answers a `tasks/*` request; `store` is `None` when the server runs no tool as a task.
pub async fn answer(
    store: Option<&TaskStore>,
    method: &Method,
    params: &Map<String, Value>,
    caller: &Principal,
    rules: &KeyRules,
    capabilities: &Map<String, Value>,
) -> Result<Value, RpcError> {
    let store = store.ok_or(RpcError::MethodNotFound)?;
    if !declared(capabilities) {
        return Err(missing_extension());
    }
    let id = string_param(params, "taskId", "a string 'taskId' is required")?;
    match method {
        Method::TasksGet => store
            .get_anywhere(id, caller, rules)
            .await
            .map(Value::Object)
            .ok_or_else(unknown),
        Method::TasksUpdate => {
            let responses = params
                .get("inputResponses")
                .and_then(Value::as_object)
                .ok_or(RpcError::InvalidParams(
                    "an object 'inputResponses' is required".into(),
                ))?;
            let what = Forwarded::Update(responses.clone());
            store
                .act_anywhere(id, caller, rules, what)
                .await
                .ok_or_else(unknown)?;
            Ok(json!({}))
        }
        Method::TasksCancel => {
            store
                .act_anywhere(id, caller, rules, Forwarded::Cancel)
                .await
                .ok_or_else(unknown)?;
            Ok(json!({}))
        }
        _ => Err(RpcError::MethodNotFound),
    }
}
