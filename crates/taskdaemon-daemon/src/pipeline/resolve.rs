//! Resolving a rebase conflict at the merge with a Ralph loop (`[pipeline]
//! resolve_conflicts`). Every phase of the spec succeeded, but rebasing it
//! on its target before the merge conflicts: a Ralph loop in the spec's
//! worktree is given the conflicting files and asked to edit the markers
//! away (its validation: no markers left). The driver then continues the
//! rebase and runs every phase's validation on the result; only when all of
//! that holds does the merge go on. Anything else pauses the spec with an
//! alert, as a conflict does without `resolve_conflicts`.
//!
//! The loop is linked from the spec's last phase (charged to it; the
//! phase stays succeeded), so a daemon killed during it resumes that loop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use taskdaemon_core::LoopEnd;
use taskdaemon_core::pipeline::{PhaseRecord, PipelineStatus, PlanRecord, SpecRecord};
use taskdaemon_git::Repo;
use taskdaemon_llm::{CommandSpec, PipelineLoop, run_command};
use tokio_util::sync::CancellationToken;

use super::cascade::{Step, phases_of, run_step, typed_spec};
use super::delivery::Handler;
use super::store;
use super::watcher::continue_resolved;
use crate::blocking::blocking;
use crate::state::Shared;

/// How a conflict at the merge ended.
pub(super) enum Resolved {
    /// Resolved, rebased and validated: merge it.
    Yes,
    /// The loop was stopped under it (the spec or plan was paused or
    /// cancelled): leave the spec as it is.
    Stopped,
    /// Not resolved: pause the spec with this note.
    No { note: String },
}

/// Asks a Ralph loop to resolve the conflict in `files`, continues the
/// rebase and validates the result.
pub(super) async fn resolve_at_merge(
    daemon: &Shared,
    plan: &PlanRecord,
    spec: &SpecRecord,
    files: &[String],
) -> Result<Resolved, String> {
    let phases = phases_of(daemon, spec).await?;
    let Some(last) = phases.last() else {
        return Ok(Resolved::No {
            note: not_resolved(
                plan,
                spec,
                files,
                "the spec has no phase to charge a loop to",
            ),
        });
    };
    let path = daemon.workspace.spec_worktree(&plan.id, &spec.name);
    let step = Step {
        link: last.id.clone(),
        kind: PipelineLoop::Ralph,
        name: format!("{} resolve conflict", spec.id),
        text: resolve_text(plan, spec, files),
        workdir: path.clone(),
        inputs: BTreeMap::new(),
        validate: Some(no_markers_command(files)),
        existing: unfinished_loop(daemon, last.loop_task.as_deref()).await?,
    };
    let handler = Arc::new(Handler::new(daemon, &plan.id, Some(spec.name.clone())));
    let end = run_step(daemon, step, handler).await?;
    if !matches!(end, LoopEnd::Succeeded { .. }) {
        let key = spec.id.clone();
        if store(daemon, move |s| s.spec(&key)).await?.status != PipelineStatus::Running {
            return Ok(Resolved::Stopped);
        }
        let why = format!("the loop asked to resolve it ended: {}", end.message());
        return Ok(Resolved::No {
            note: not_resolved(plan, spec, files, &why),
        });
    }
    let root = daemon.workspace.root().to_path_buf();
    let (worktree, target) = (path.clone(), plan.target_branch.clone());
    let rebased = blocking(move || {
        let repo = Repo::open(&root)?;
        continue_resolved(&repo, &worktree, &target)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("rebase: {e}"))?;
    if let Err(left) = rebased {
        let why = format!("the rebase still conflicts in {}", left.join(", "));
        return Ok(Resolved::No {
            note: not_resolved(plan, spec, &left, &why),
        });
    }
    match failing_validation(daemon, spec, &phases, &path).await? {
        None => Ok(Resolved::Yes),
        Some(why) => Ok(Resolved::No {
            note: format!(
                "the conflict with {} was resolved by a Ralph loop, but {why}: fix it in {} (the rebase is done), then `taskdaemon plan resume {}`",
                plan.target_branch, spec.worktree, plan.id
            ),
        }),
    }
}

/// The loop `loop_task` names when it has not ended (a resolving loop a
/// crash interrupted), to resume.
async fn unfinished_loop(
    daemon: &Shared,
    loop_task: Option<&str>,
) -> Result<Option<String>, String> {
    let Some(id) = loop_task.map(str::to_owned) else {
        return Ok(None);
    };
    let key = id.clone();
    let record = store(daemon, move |s| s.loop_record(&key)).await?;
    Ok((!record.task.status.is_terminal()).then_some(id))
}

/// Runs every phase's validation in the rebased worktree, in order: the
/// first that fails, with its output's tail.
async fn failing_validation(
    daemon: &Shared,
    spec: &SpecRecord,
    phases: &[PhaseRecord],
    worktree: &std::path::Path,
) -> Result<Option<String>, String> {
    for phase in phases {
        // The phase's loop type's limits, as its own validation had them.
        let step = Step {
            link: phase.id.clone(),
            kind: PipelineLoop::Ralph,
            name: String::new(),
            text: String::new(),
            workdir: worktree.to_path_buf(),
            inputs: BTreeMap::new(),
            validate: Some(phase.validation.clone()),
            existing: None,
        };
        let limits = typed_spec(daemon, &step)?;
        let command = CommandSpec::Shell(phase.validation.clone());
        let outcome = run_command(
            &command,
            worktree,
            Duration::from_secs(limits.validation_timeout_secs),
            limits.tool_output_limit,
            &CancellationToken::new(),
        )
        .await
        .map_err(|e| {
            format!(
                "cannot run `{}` in {}: {e}",
                phase.validation, spec.worktree
            )
        })?;
        if !outcome.success() {
            return Ok(Some(format!(
                "phase {}'s validation `{}` fails on the result: {}",
                phase.number,
                phase.validation,
                last_lines(&outcome.output)
            )));
        }
    }
    Ok(None)
}

/// The end of a command's output, on one line, for a note.
fn last_lines(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.len() {
        0 => "no output".to_owned(),
        n => lines[n.saturating_sub(3)..].join(" / "),
    }
}

/// The note of a conflict the loop did not resolve.
fn not_resolved(plan: &PlanRecord, spec: &SpecRecord, files: &[String], why: &str) -> String {
    format!(
        "rebase on {} conflicts in {} and {why}: resolve it in {} (git rebase --continue), then `taskdaemon plan resume {}`",
        plan.target_branch,
        files.join(", "),
        spec.worktree,
        plan.id
    )
}

/// The resolving loop's spec text: the conflict, the files, what done means.
fn resolve_text(plan: &PlanRecord, spec: &SpecRecord, files: &[String]) -> String {
    format!(
        "# Resolve the conflict merging spec `{}` into `{}`\n\nEvery phase of spec `{}` succeeded, but rebasing it onto `{}`, which moved, conflicts. Your worktree is in the middle of that rebase. These files conflict: {}. Edit each so it holds what both sides meant, with no conflict markers (`<<<<<<<`, `=======`, `>>>>>>>`) left, and do not run git: the rebase is continued, every phase's validation run and the spec merged after you finish.\n\n## The spec: {}\n\n{}\n",
        spec.name,
        plan.target_branch,
        spec.name,
        plan.target_branch,
        files.join(", "),
        spec.title,
        spec.body
    )
}

/// A shell command that exits 0 when none of `files` (relative to the
/// worktree) holds a conflict marker line, as `Repo::files_with_markers`
/// sees them; a file that is gone holds none.
fn no_markers_command(files: &[String]) -> String {
    let quoted: Vec<String> = files.iter().map(|f| shell_quote(f)).collect();
    format!(
        "! grep -qsE '^(<<<<<<< |>>>>>>> |=======$)' -- {}",
        quoted.join(" ")
    )
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes(command: &str, dir: &std::path::Path) -> bool {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(dir)
            .status()
            .expect("sh runs")
            .success()
    }

    #[test]
    fn the_marker_check_fails_while_a_file_holds_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let odd = "it's a file";
        std::fs::write(dir.path().join("clean.txt"), "one\ntwo\n").unwrap();
        std::fs::write(
            dir.path().join(odd),
            "<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> main\n",
        )
        .unwrap();
        let files = vec![
            "clean.txt".to_owned(),
            odd.to_owned(),
            "gone.txt".to_owned(),
        ];
        assert!(!passes(&no_markers_command(&files), dir.path()));
        std::fs::write(dir.path().join(odd), "ours and theirs\n").unwrap();
        assert!(passes(&no_markers_command(&files), dir.path()));
        std::fs::write(dir.path().join("clean.txt"), "=======\n").unwrap();
        assert!(!passes(&no_markers_command(&files), dir.path()));
    }
}
