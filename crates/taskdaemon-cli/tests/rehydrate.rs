//! `rehydrate`: the budget, what counts as already reported, alerts.

mod common;

use common::{Ws, eventually_some};

/// The lines of the Markdown section whose header starts with `header`.
fn section<'a>(markdown: &'a str, header: &str) -> Vec<&'a str> {
    let mut lines = markdown.lines().skip_while(|l| !l.starts_with(header));
    if lines.next().is_none() {
        return Vec::new();
    }
    lines.take_while(|l| !l.starts_with("## ")).collect()
}

/// The entry line for `id` (`- ID ...`), if shown.
fn entry<'a>(lines: &[&'a str], id: &str) -> Option<&'a str> {
    let prefix = format!("- {id} ");
    lines.iter().copied().find(|l| l.starts_with(&prefix))
}

struct Fixture {
    ws: Ws,
    running: Vec<String>,
    succeeded: Vec<String>,
    failed: Vec<String>,
}

/// 4 running processes with output, 6 that exit 0 and 5 that exit 1, all ended ones settled.
fn fifteen_processes() -> Fixture {
    let ws = Ws::new();
    let mut running = Vec::new();
    let mut succeeded = Vec::new();
    let mut failed = Vec::new();
    for i in 0..15 {
        match i % 4 {
            0 => running.push(ws.spawn_sh(&format!("echo line-{i}; exec sleep 300"))),
            1 | 3 if succeeded.len() < 6 => succeeded.push(ws.spawn_sh("echo fine; exit 0")),
            _ => failed.push(ws.spawn_sh("echo broken >&2; exit 1")),
        }
    }
    assert_eq!(
        (running.len(), succeeded.len(), failed.len()),
        (4, 6, 5),
        "fixture"
    );
    for id in &succeeded {
        assert_eq!(ws.run(&["wait", id]).code, Some(0));
    }
    for id in &failed {
        assert_eq!(ws.run(&["wait", id]).code, Some(1));
    }
    // The running ones have written their line.
    for (n, id) in running.iter().enumerate() {
        let line = format!("line-{}\n", n * 4);
        eventually_some("output of a running process", || {
            (ws.stdout_log(id) == line).then_some(())
        });
    }
    Fixture {
        ws,
        running,
        succeeded,
        failed,
    }
}

#[test]
fn rehydrate_budget_priorities_and_cursor() {
    let Fixture {
        ws,
        running,
        succeeded,
        failed,
    } = fifteen_processes();

    // A tiny budget: at most 240 characters, and running processes come first.
    let small = ws.run(&["rehydrate", "--peek", "--budget", "60"]).ok();
    let md = &small.stdout;
    assert!(
        md.chars().count() <= 240,
        "{} chars:\n{md}",
        md.chars().count()
    );
    let shown_running = section(md, "## Running");
    assert!(
        running.iter().any(|id| entry(&shown_running, id).is_some()),
        "no running process in:\n{md}"
    );
    let ended = section(md, "## Ended");
    let all_running_shown = running.iter().all(|id| entry(&shown_running, id).is_some());
    assert!(
        ended.is_empty() || all_running_shown,
        "ended lines shown before every running one:\n{md}"
    );

    // A middling budget: failures outrank successes.
    let medium = ws.run(&["rehydrate", "--peek", "--budget", "150"]).ok();
    let md = &medium.stdout;
    assert!(md.chars().count() <= 600, "{md}");
    let shown_running = section(md, "## Running");
    for id in &running {
        assert!(entry(&shown_running, id).is_some(), "{id} missing:\n{md}");
    }
    let ended = section(md, "## Ended");
    if succeeded.iter().any(|id| entry(&ended, id).is_some()) {
        for id in &failed {
            assert!(
                entry(&ended, id).is_some(),
                "a success is shown but failure {id} is not:\n{md}"
            );
        }
    }

    // JSON: the Markdown and its token count, within the budget.
    for budget in [60usize, 150, 5000] {
        let run = ws
            .run(&[
                "rehydrate",
                "--peek",
                "--json",
                "--budget",
                &budget.to_string(),
            ])
            .ok();
        let json = run.json();
        let markdown = json["markdown"].as_str().expect("markdown field");
        let tokens = json["tokens"].as_u64().expect("tokens field") as usize;
        assert!(tokens <= budget, "{tokens} tokens > {budget}");
        assert!(markdown.chars().count() <= budget * 4);
        assert_eq!(tokens, markdown.chars().count().div_ceil(4));
    }

    // A big budget shows everything, with exit codes; --peek above did not
    // mark anything as seen.
    let full = ws.run(&["rehydrate", "--budget", "5000"]).ok();
    let md = &full.stdout;
    let shown_running = section(md, "## Running");
    for (n, id) in running.iter().enumerate() {
        assert!(entry(&shown_running, id).is_some(), "{id} missing:\n{md}");
        assert!(
            md.contains(&format!("line-{}", n * 4)),
            "last line of {id} missing:\n{md}"
        );
    }
    let ended = section(md, "## Ended since last rehydrate");
    for id in &succeeded {
        let line = entry(&ended, id).unwrap_or_else(|| panic!("{id} missing:\n{md}"));
        assert!(line.contains("exit 0"), "{line}");
    }
    for id in &failed {
        let line = entry(&ended, id).unwrap_or_else(|| panic!("{id} missing:\n{md}"));
        assert!(line.contains("exit 1"), "{line}");
    }

    // Reported once: the next rehydrate lists no ended process again, but
    // still lists what runs.
    let again = ws.run(&["rehydrate", "--budget", "5000"]).ok();
    let md = &again.stdout;
    let ended = section(md, "## Ended");
    for id in succeeded.iter().chain(&failed) {
        assert!(entry(&ended, id).is_none(), "{id} reported twice:\n{md}");
    }
    let shown_running = section(md, "## Running");
    for id in &running {
        assert!(entry(&shown_running, id).is_some(), "{id} missing:\n{md}");
    }

    // A new exit is reported by the next rehydrate, and only that one.
    let late = ws.spawn_sh("exit 5");
    assert_eq!(ws.run(&["wait", &late]).code, Some(5));
    let md = ws.run(&["rehydrate"]).ok().stdout;
    let ended = section(&md, "## Ended");
    assert!(
        entry(&ended, &late).is_some_and(|l| l.contains("exit 5")),
        "{md}"
    );
    assert_eq!(
        ended.iter().filter(|l| l.starts_with("- ")).count(),
        1,
        "{md}"
    );
}

#[test]
fn exits_cut_for_the_budget_are_not_lost() {
    // A rehydrate that had no room for an exit must not mark it as seen:
    // otherwise a failure is never reported to the agent at all.
    let Fixture {
        ws,
        succeeded,
        failed,
        ..
    } = fifteen_processes();
    let small = ws.run(&["rehydrate", "--budget", "60"]).ok();
    let small_ended = section(&small.stdout, "## Ended");

    let full = ws.run(&["rehydrate", "--budget", "5000"]).ok();
    let md = &full.stdout;
    let ended = section(md, "## Ended");
    for id in failed.iter().chain(&succeeded) {
        if entry(&small_ended, id).is_none() {
            assert!(
                entry(&ended, id).is_some(),
                "{id} was cut from the budget-60 rehydrate and never reported:\n{}\n---\n{md}",
                small.stdout
            );
        }
    }
}

#[test]
fn hang_alert_appears_in_rehydrate() {
    let ws = Ws::new();
    ws.write_config("[daemon]\nsample_interval = \"100ms\"\n");
    ws.run(&["start"]).ok();
    let hung = ws.spawn(&["--hang-timeout", "500ms", "--", "sleep", "300"]);
    // A process that keeps writing output must not be flagged.
    let busy = ws.spawn(&[
        "--hang-timeout",
        "1s",
        "--",
        "sh",
        "-c",
        "while :; do echo tick; sleep 0.1; done",
    ]);

    eventually_some("a hang alert", || {
        let md = ws.run(&["rehydrate", "--peek"]).ok().stdout;
        let alerts = section(&md, "## Alerts");
        alerts
            .iter()
            .any(|l| l.contains(&hung) && l.contains("hang"))
            .then_some(())
    });
    // Let the busy process show well over its hang timeout of activity:
    // 30 more lines is at least 3 s of it.
    let ticks = ws.stdout_log(&busy).lines().count();
    eventually_some("more output from the busy process", || {
        (ws.stdout_log(&busy).lines().count() >= ticks + 30).then_some(())
    });
    let md = ws.run(&["rehydrate"]).ok().stdout;
    let alerts = section(&md, "## Alerts");
    assert!(
        alerts.iter().any(|l| l.contains(&hung)),
        "the alert is gone:\n{md}"
    );
    assert!(
        !alerts.iter().any(|l| l.contains(&busy)),
        "a process writing output was flagged as hung:\n{md}"
    );
    // An alert is not a kill.
    assert_eq!(ws.task_status(&hung), "running");
    // Reported once, like exits.
    let md = ws.run(&["rehydrate"]).ok().stdout;
    assert!(section(&md, "## Alerts").is_empty(), "{md}");
}

#[test]
fn nothing_to_report() {
    let ws = Ws::new();
    let md = ws.run(&["rehydrate"]).ok().stdout;
    assert!(md.starts_with("# taskdaemon: "), "{md}");
    assert!(md.contains("daemon down"), "{md}");
    assert!(md.contains("Nothing runs"), "{md}");
    // rehydrate reads the store; it does not start the daemon.
    assert!(ws.daemon_processes().is_empty());
}
