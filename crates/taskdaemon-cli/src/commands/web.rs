//! `taskdaemon web`, `web token`, `dashboard` and `share`: the web server in
//! the foreground, the login token, the login URL and read-only links. The
//! server is `taskdaemon-web`; the rules are the service's.

use taskdaemon_core::time::{format_age, now_millis, to_rfc3339};
use taskdaemon_service::{Service, ShareScope};
use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::{
    DaemonWebArgs, DashboardArgs, ReportArgs, ReportFormat, ShareArgs, ShareCommand, WebArgs,
    WebCommand,
};
use crate::error::UsageError;
use crate::output::{print_json, table};

/// The address to serve on: the flag, else `[web] listen`, else the default.
pub fn listen_addr(flag: Option<&str>, service: &Service) -> String {
    flag.filter(|a| !a.is_empty())
        .map(str::to_owned)
        .or_else(|| service.config().web.listen.clone())
        .unwrap_or_else(|| taskdaemon_web::DEFAULT_LISTEN.to_owned())
}

/// Binds the web address and records its URL; the caller then serves it.
pub fn bind(
    service: &Service,
    addr: &str,
    allow_remote: bool,
) -> anyhow::Result<std::net::TcpListener> {
    let allow_remote = allow_remote || service.config().web.allow_remote;
    let listener = taskdaemon_web::bind(addr, allow_remote)?;
    service.record_web_url(&taskdaemon_web::base_url(&listener)?)?;
    service.web_token()?;
    Ok(listener)
}

pub fn web(workspace: &Workspace, args: WebArgs) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    if let Some(WebCommand::Token(token)) = args.command {
        let token = if token.rotate {
            service.rotate_web_token()?
        } else {
            service.web_token()?
        };
        println!("{token}");
        return Ok(0);
    }
    let addr = listen_addr(args.listen.as_deref(), &service);
    let listener = bind(&service, &addr, args.allow_remote)?;
    let base = taskdaemon_web::base_url(&listener)?;
    eprintln!("serving {base}/ (log in: taskdaemon dashboard); Ctrl-C stops");
    println!("{base}");
    taskdaemon_web::serve_blocking(service, listener)?;
    Ok(0)
}

/// Starts the web server inside the daemon process when asked to (flag or
/// config); a failure to bind is the daemon's start failure.
pub fn serve_from_daemon(workspace: &Workspace, args: &DaemonWebArgs) -> anyhow::Result<()> {
    let service = service(workspace)?;
    let wanted = args.web.is_some() || service.config().web.listen.is_some();
    if !wanted {
        return Ok(());
    }
    let addr = listen_addr(args.web.as_deref(), &service);
    let listener = bind(&service, &addr, args.allow_remote)?;
    taskdaemon_web::spawn(service, listener)?;
    Ok(())
}

/// The daemon arguments that carry `--web` on to the daemon process.
pub fn daemon_args(args: &DaemonWebArgs) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(addr) = &args.web {
        out.push(format!("--web={addr}"));
    }
    if args.allow_remote {
        out.push("--allow-remote".to_owned());
    }
    out
}

pub fn dashboard(workspace: &Workspace, args: DashboardArgs) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    let Some(base) = service.web_url()? else {
        return Err(UsageError(
            "no web server is configured: run `taskdaemon web`, `taskdaemon start --web`, or set [web] listen".to_owned(),
        )
        .into());
    };
    let url = Service::login_url(&base, &service.web_token()?);
    println!("{url}");
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if !args.no_open && display {
        // Best effort: without a browser the printed URL is the answer.
        let _ = std::process::Command::new("xdg-open")
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    Ok(0)
}

pub fn share(workspace: &Workspace, args: ShareArgs) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    match args.command {
        Some(ShareCommand::List(flag)) => {
            let shares = service.shares()?;
            if flag.json {
                print_json(&shares)?;
                return Ok(0);
            }
            let now = now_millis();
            let rows: Vec<Vec<String>> = shares
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.scope.to_string(),
                        if s.expired(now) {
                            "expired".to_owned()
                        } else {
                            format!("in {}", format_age(s.expires_at - now))
                        },
                        to_rfc3339(s.created_at),
                    ]
                })
                .collect();
            print!("{}", table(&["ID", "SCOPE", "EXPIRES", "CREATED"], &rows));
            Ok(0)
        }
        Some(ShareCommand::Revoke { id }) => {
            let revoked = service.revoke_share(&id)?;
            println!("revoked {} ({})", revoked.id, revoked.scope);
            Ok(0)
        }
        None => {
            let scope = parse_scope(&args.scope)?;
            let share = service.create_share(scope, args.expires)?;
            let base = service
                .web_url()?
                .unwrap_or_else(|| format!("http://{}", taskdaemon_web::DEFAULT_LISTEN));
            let url = Service::login_url(&base, &share.secret);
            if args.json {
                print_json(&serde_json::json!({ "share": share.redacted(), "url": url }))?;
            } else {
                eprintln!(
                    "read-only link {} for {}, expires {}",
                    share.id,
                    share.scope,
                    to_rfc3339(share.expires_at)
                );
                println!("{url}");
            }
            Ok(0)
        }
    }
}

fn parse_scope(words: &[String]) -> anyhow::Result<ShareScope> {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    Ok(match words.as_slice() {
        ["all"] => ShareScope::All,
        ["task", id] => ShareScope::Task((*id).to_owned()),
        ["queue", queue] => ShareScope::Queue((*queue).to_owned()),
        _ => {
            return Err(UsageError(format!(
                "--scope {}: use `all`, `task ID` or `queue QUEUE`",
                words.join(" ")
            ))
            .into());
        }
    })
}

/// `report`: the service's report, as Markdown, HTML or JSON.
pub fn report(workspace: &Workspace, args: ReportArgs) -> anyhow::Result<u8> {
    let window = i64::try_from(args.since.as_millis()).unwrap_or(i64::MAX);
    let report = service(workspace)?.report(now_millis().saturating_sub(window))?;
    match args.format {
        ReportFormat::Md => print!("{}", report.to_markdown()),
        ReportFormat::Html => print!("{}", report.to_html()),
        ReportFormat::Json => print_json(&report)?,
    }
    Ok(0)
}
