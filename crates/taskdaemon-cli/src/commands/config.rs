//! `taskdaemon config init|check|history`, `loop types` and `analytics`:
//! formatters over the service's loop-type and analytics views.

use taskdaemon_core::time::to_rfc3339;
use taskdaemon_looptypes::{LoopType, Network};
use taskdaemon_service::{AnalyticsQuery, GroupBy};
use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::{
    AnalyticsArgs, AnalyticsBy, ConfigCheckArgs, ConfigCommand, ConfigHistoryArgs, LoopTypesArgs,
};
use crate::output::{print_json, table};

pub fn run(workspace: &Workspace, command: ConfigCommand) -> anyhow::Result<u8> {
    match command {
        ConfigCommand::Init(args) => {
            let path = service(workspace)?.config_init(args.force)?;
            println!("wrote {}", path.display());
            Ok(0)
        }
        ConfigCommand::Check(args) => check(workspace, args),
        ConfigCommand::History(args) => history(workspace, args),
    }
}

fn check(workspace: &Workspace, args: ConfigCheckArgs) -> anyhow::Result<u8> {
    let report = service(workspace)?.config_check(args.file.as_deref())?;
    if args.json {
        print_json(&report)?;
    } else {
        println!(
            "{}: ok, {} loop types ({})",
            report
                .file
                .as_deref()
                .unwrap_or("no taskdaemon.yml, built-in types"),
            report.types.len(),
            report.types.join(", ")
        );
    }
    Ok(0)
}

fn history(workspace: &Workspace, args: ConfigHistoryArgs) -> anyhow::Result<u8> {
    let versions = service(workspace)?.config_history(args.limit)?;
    if args.json {
        print_json(&versions)?;
        return Ok(0);
    }
    if versions.is_empty() {
        println!("no configuration loaded yet (the daemon loads taskdaemon.yml when it starts)");
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                v.version.to_string(),
                to_rfc3339(v.loaded_at),
                v.digest.clone(),
                v.file.clone().unwrap_or_else(|| "built-in".to_owned()),
                v.type_names.join(", "),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["VERSION", "LOADED", "DIGEST", "FILE", "TYPES"], &rows)
    );
    Ok(0)
}

pub fn types(workspace: &Workspace, args: LoopTypesArgs) -> anyhow::Result<u8> {
    let types = service(workspace)?.loop_types()?;
    if let Some(name) = &args.name {
        let loop_type = types
            .get(name)
            .map_err(taskdaemon_service::ServiceError::BadInput)?;
        if args.json {
            print_json(loop_type)?;
        } else {
            print_type(loop_type);
        }
        return Ok(0);
    }
    if args.json {
        print_json(&types)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = types
        .types
        .values()
        .map(|t| {
            vec![
                t.name.clone(),
                t.chain.join(" > "),
                format!("{}/{}", t.provider, t.model),
                t.max_iterations.to_string(),
                network(&t.network),
                t.inputs.keys().cloned().collect::<Vec<_>>().join(", "),
                t.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "TYPE",
                "EXTENDS",
                "MODEL",
                "ITER",
                "NETWORK",
                "INPUTS",
                "DESCRIPTION"
            ],
            &rows
        )
    );
    println!(
        "source: {} (digest {}); `loop types NAME` shows where each value came from",
        types
            .file
            .as_deref()
            .map_or("built-in types only".to_owned(), |p| p
                .display()
                .to_string()),
        types.digest
    );
    Ok(0)
}

/// One type, every resolved value with the file and type that set it.
fn print_type(t: &LoopType) {
    println!("{}: {}", t.name, t.description.as_deref().unwrap_or(""));
    println!("extends: {}", t.chain.join(" > "));
    let rows: Vec<Vec<String>> = t
        .provenance
        .iter()
        .filter(|(path, _)| path.as_str() != "prompt" && path.as_str() != "description")
        .map(|(path, source)| {
            let value = value_at(t, path);
            vec![path.clone(), value, source.to_string()]
        })
        .collect();
    print!("{}", table(&["FIELD", "VALUE", "FROM"], &rows));
    if let Some(source) = t.provenance.get("prompt") {
        println!("\nprompt (from {source}):\n{}", t.prompt.trim_end());
    }
}

/// The resolved value at a dotted path, short, for the table.
fn value_at(t: &LoopType, path: &str) -> String {
    let whole = serde_json::to_value(t).unwrap_or_default();
    let mut at = &whole;
    for part in path.split('.') {
        // Durations are seconds once resolved (timeout -> timeout_secs).
        at = match at.get(part).or_else(|| at.get(format!("{part}_secs"))) {
            Some(next) => next,
            None => return String::new(),
        };
    }
    let text = match at {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let line = text.lines().next().unwrap_or_default();
    if line.len() > 60 || text.lines().count() > 1 {
        format!("{}...", line.chars().take(57).collect::<String>())
    } else {
        line.to_owned()
    }
}

fn network(n: &Network) -> String {
    match n {
        Network::Open => "open".to_owned(),
        Network::None => "none".to_owned(),
        Network::Allow(hosts) => format!("allow {}", hosts.join(",")),
    }
}

pub fn analytics(workspace: &Workspace, args: AnalyticsArgs) -> anyhow::Result<u8> {
    let by = match args.by {
        AnalyticsBy::Type => GroupBy::Type,
        AnalyticsBy::Model => GroupBy::Model,
        AnalyticsBy::Day => GroupBy::Day,
    };
    let report = service(workspace)?.analytics(AnalyticsQuery {
        since: args.since,
        by,
    })?;
    if args.json {
        print_json(&report)?;
        return Ok(0);
    }
    if report.groups.is_empty() {
        println!(
            "no loops{}",
            report
                .since
                .map_or(String::new(), |s| format!(" since {s}"))
        );
        return Ok(0);
    }
    let percent = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{:.0}%", r * 100.0));
    let secs = |s: Option<f64>| s.map_or("-".to_owned(), |s| format!("{s:.1}s"));
    let rows: Vec<Vec<String>> = report
        .groups
        .iter()
        .chain(std::iter::once(&report.total))
        .map(|g| {
            vec![
                g.key.clone(),
                g.runs.to_string(),
                percent(g.success_rate),
                g.iterations.to_string(),
                g.tool_calls.to_string(),
                format!(
                    "{}/{}/{}",
                    g.input_tokens,
                    g.output_tokens,
                    g.cache_read_tokens + g.cache_write_tokens
                ),
                format!("${:.4}", g.cost_usd),
                secs(g.duration_p50_secs),
                secs(g.duration_p95_secs),
                percent(g.validation_pass_rate),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "GROUP",
                "RUNS",
                "SUCCESS",
                "ITER",
                "TOOLS",
                "TOKENS IN/OUT/CACHE",
                "COST",
                "P50",
                "P95",
                "VALID"
            ],
            &rows
        )
    );
    Ok(0)
}
