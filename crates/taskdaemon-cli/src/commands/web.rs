//! `taskdaemon web`, `web token`, `dashboard` and `share`: the web server in
//! the foreground, the login token, the login URL and read-only links. The
//! server is `taskdaemon-web`; the rules are the service's.

use taskdaemon_core::time::{format_age, now_millis, to_rfc3339};
use taskdaemon_service::{Service, ShareScope};
use taskdaemon_web::TlsFiles;
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

/// What to serve with: the listener, and the TLS config for HTTPS.
pub struct Serving {
    pub listener: std::net::TcpListener,
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    pub base: String,
}

/// The TLS files: the flags, else `[web] tls_cert`/`tls_key` (relative to
/// the workspace root). Both or neither.
fn tls_files(
    workspace: &Workspace,
    service: &Service,
    cert: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
) -> anyhow::Result<Option<TlsFiles>> {
    let web = &service.config().web;
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        _ => match (&web.tls_cert, &web.tls_key) {
            (Some(c), Some(k)) => (workspace.resolve(c), workspace.resolve(k)),
            (None, None) => return Ok(None),
            _ => {
                return Err(UsageError(
                    "[web] tls_cert and tls_key go together: give both or neither".to_owned(),
                )
                .into());
            }
        },
    };
    Ok(Some(TlsFiles { cert, key }))
}

/// Reads the TLS files (a bad one fails here), binds the web address and
/// records its URL; the caller then serves it.
pub fn bind(
    workspace: &Workspace,
    service: &Service,
    addr: &str,
    allow_remote: bool,
    cert: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
) -> anyhow::Result<Serving> {
    let tls = match tls_files(workspace, service, cert, key)? {
        Some(files) => Some(files.server_config()?),
        None => None,
    };
    let allow_remote = allow_remote || service.config().web.allow_remote;
    let listener = taskdaemon_web::bind(addr, allow_remote, tls.is_some())?;
    let base = taskdaemon_web::base_url(&listener, tls.is_some())?;
    service.record_web_url(&base)?;
    service.web_token()?;
    Ok(Serving {
        listener,
        tls,
        base,
    })
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
    let serving = bind(
        workspace,
        &service,
        &addr,
        args.allow_remote,
        args.tls_cert.as_deref(),
        args.tls_key.as_deref(),
    )?;
    eprintln!(
        "serving {}/ (log in: taskdaemon dashboard); Ctrl-C stops",
        serving.base
    );
    println!("{}", serving.base);
    taskdaemon_web::serve_blocking(service, serving.listener, serving.tls)?;
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
    let serving = bind(
        workspace,
        &service,
        &addr,
        args.allow_remote,
        args.tls_cert.as_deref(),
        args.tls_key.as_deref(),
    )?;
    taskdaemon_web::spawn(service, serving.listener, serving.tls)?;
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
    // The daemon runs elsewhere: relative paths would not resolve there.
    for (flag, path) in [("--tls-cert", &args.tls_cert), ("--tls-key", &args.tls_key)] {
        if let Some(path) = path {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            out.push(format!("{flag}={}", path.display()));
        }
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
