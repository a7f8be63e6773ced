//! Prompts: a registry like the tools', for `prompts/list`, `prompts/get` and argument
//! completion.
//!
//! Decisions: an unknown prompt or a missing required argument is `-32602`; argument values
//! must be strings (the schema says so); a prompt may, in 2026-07-28, ask the client for input
//! first (the same sealed `requestState` as tools); completions are capped at 100 values.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::RpcError;
use crate::error::ToolError;
use crate::mcp::context::ToolContext;
use crate::mcp::input_required::{InputRequired, resume};
use crate::mcp::jsonrpc::string_param;
use crate::mcp::request_state::StateSealer;
use crate::mcp::version::Era;

/// Most completion values returned.
pub const MAX_COMPLETIONS: usize = 100;

/// One argument a prompt takes.
#[derive(Debug, Clone)]
pub struct PromptArgument {
    pub name: &'static str,
    pub description: &'static str,
    pub required: bool,
}

/// What a prompt declares about itself.
#[derive(Debug, Clone)]
pub struct PromptDefinition {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub arguments: Vec<PromptArgument>,
}

/// A prompt's messages, or a request for input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptOutput {
    pub description: Option<String>,
    pub messages: Vec<Value>,
    pub input_required: Option<InputRequired>,
}

impl PromptOutput {
    pub fn messages(messages: Vec<Value>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }
}

pub type PromptFuture = Pin<Box<dyn Future<Output = Result<PromptOutput, ToolError>> + Send>>;

/// A prompt the server offers.
pub trait Prompt: Send + Sync + 'static {
    fn definition(&self) -> PromptDefinition;
    /// Builds the messages; required arguments are present and every value is a string.
    fn get(&self, arguments: Map<String, Value>, ctx: ToolContext) -> PromptFuture;
    /// Completion values for `argument` starting from `value`.
    fn complete(&self, _argument: &str, _value: &str) -> Vec<String> {
        Vec::new()
    }
}

/// The prompts and their prebuilt `prompts/list` entries.
#[derive(Default)]
pub struct PromptRegistry {
    prompts: Vec<(PromptDefinition, Arc<dyn Prompt>)>,
    by_name: HashMap<&'static str, usize>,
    listed: Vec<Value>,
}

impl std::fmt::Debug for PromptRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl PromptRegistry {
    /// # Panics
    /// If the name is taken (a programming error, found at startup).
    pub fn register(&mut self, prompt: impl Prompt) -> &mut Self {
        let def = prompt.definition();
        assert!(
            !self.by_name.contains_key(def.name),
            "prompt {} registered twice",
            def.name
        );
        let arguments: Vec<Value> = def
            .arguments
            .iter()
            .map(
                |a| json!({ "name": a.name, "description": a.description, "required": a.required }),
            )
            .collect();
        self.listed.push(json!({
            "name": def.name,
            "title": def.title,
            "description": def.description,
            "arguments": arguments,
        }));
        self.by_name.insert(def.name, self.prompts.len());
        self.prompts.push((def, Arc::new(prompt)));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    pub fn listed(&self) -> &[Value] {
        &self.listed
    }

    fn find(&self, name: &str) -> Result<&(PromptDefinition, Arc<dyn Prompt>), RpcError> {
        self.by_name
            .get(name)
            .map(|&i| &self.prompts[i])
            .ok_or(RpcError::InvalidParams("unknown prompt".into()))
    }

    /// Handles `prompts/get`.
    pub async fn get(
        &self,
        params: &Map<String, Value>,
        mut ctx: ToolContext,
        sealer: &StateSealer,
    ) -> Result<Value, RpcError> {
        let name = string_param(params, "name", "prompts/get needs a string 'name'")?;
        let (def, prompt) = self.find(name)?;
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) if m.values().all(Value::is_string) => m.clone(),
            Some(_) => {
                return Err(RpcError::InvalidParams(
                    "prompt arguments must be strings".into(),
                ));
            }
        };
        if let Some(missing) = def
            .arguments
            .iter()
            .find(|a| a.required && !arguments.contains_key(a.name))
        {
            tracing::debug!(argument = missing.name, "prompt argument missing");
            return Err(RpcError::InvalidParams(
                "a required prompt argument is missing".into(),
            ));
        }
        let target = format!("prompts/get {name}");
        resume(params, &mut ctx, sealer, &target)?;
        let out = prompt
            .get(arguments, ctx.clone())
            .await
            .map_err(|_| RpcError::Internal)?;
        if let Some(input) = out.input_required {
            return match ctx.era {
                Era::Modern => Ok(input.to_result(&ctx, sealer, &target)),
                Era::Legacy => Err(RpcError::InvalidParams(
                    "this prompt needs input that only 2026-07-28 clients can give".into(),
                )),
            };
        }
        let mut result = json!({ "messages": out.messages });
        if let Some(d) = out.description {
            result["description"] = json!(d);
        }
        Ok(result)
    }

    /// Completion values for an argument of a prompt.
    pub fn complete(
        &self,
        name: &str,
        argument: &str,
        value: &str,
    ) -> Result<Vec<String>, RpcError> {
        let (_, prompt) = self.find(name)?;
        let mut values = prompt.complete(argument, value);
        values.truncate(MAX_COMPLETIONS);
        Ok(values)
    }
}
