//! `system_info`: what an operator's dashboard would show about the host and this process.
//!
//! It reports the OS name and version, kernel version, logical CPU count, load averages,
//! memory totals, host uptime, and this process's resident memory. It reports no host name,
//! no user names, no paths and no process list: a client learns how loaded the machine is,
//! not who or what else runs on it.

use serde_json::{Map, Value, json};
use sysinfo::{MemoryRefreshKind, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::tools::registry::{
    Tool, ToolContext, ToolDefinition, ToolError, ToolFuture, ToolOutput,
};

pub struct SystemInfo;

impl Tool for SystemInfo {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "system_info",
            title: "System information",
            description: "Reports the operating system, kernel, CPU count and load, memory, uptime, \
                          and this server's own memory use.",
            input_schema: json!({ "type": "object", "additionalProperties": false }),
            read_only: true,
            requires_client: &[],
        }
    }

    fn call(&self, _arguments: Map<String, Value>, _ctx: ToolContext) -> ToolFuture {
        Box::pin(async move {
            tokio::task::spawn_blocking(collect)
                .await
                .unwrap_or(Err(ToolError::Failed("system information is unavailable")))
        })
    }
}

fn collect() -> Result<ToolOutput, ToolError> {
    let unavailable = || ToolError::Failed("system information is unavailable");
    let mut sys = System::new().map_err(|_| unavailable())?;
    sys.refresh_memory_specifics(MemoryRefreshKind::everything());
    let pid = sysinfo::get_current_pid().map_err(|_| unavailable())?;
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing().with_memory(),
    );
    let process_rss = sys.process(pid).map(|p| p.memory());
    let load = System::load_average().ok();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).ok();
    Ok(ToolOutput::structured(json!({
        "os": System::name().ok(),
        "osVersion": System::os_version().ok(),
        "kernelVersion": System::kernel_version().ok(),
        "cpuCount": cpus,
        "loadAverage": load.map(|l| json!({ "one": l.one, "five": l.five, "fifteen": l.fifteen })),
        "memory": {
            "totalBytes": sys.total_memory(),
            "usedBytes": sys.used_memory(),
            "availableBytes": sys.available_memory(),
        },
        "uptimeSeconds": System::uptime().ok(),
        "processResidentBytes": process_rss,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_real_figures_for_this_host() {
        let ctx = ToolContext::detached(
            crate::mcp::version::Era::Legacy,
            crate::security::auth::KeyId::new("k"),
        );
        let out = SystemInfo.call(Map::new(), ctx).await.expect("system info");
        let s = out.structured.expect("structured");
        assert!(s["cpuCount"].as_u64().is_some_and(|n| n >= 1));
        assert!(s["memory"]["totalBytes"].as_u64().is_some_and(|n| n > 0));
        assert!(s["processResidentBytes"].as_u64().is_some_and(|n| n > 0));
        assert!(s["uptimeSeconds"].as_u64().is_some());
        assert!(s["kernelVersion"].as_str().is_some_and(|k| !k.is_empty()));
    }
}
