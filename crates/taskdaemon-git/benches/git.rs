//! What git costs a spec, for the pipeline bench's "git's share of the time":
//! creating its worktree, committing a phase, rebasing on a target that
//! moved, merging (fast-forward and merge commit, into the checked-out
//! target) and removing the worktree, on a small repository; plus one
//! MainWatcher poll. Figures only; nothing fails on them.
//!
//!   cargo bench -p taskdaemon-git --bench git        (bench/git.sh)
//!
//! Knobs: GIT_ROUNDS (20 specs), GIT_FILES (200 files in the repository).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use taskdaemon_git::{MainWatcher, MergeOutcome, MergeStrategy, RebaseOutcome, Repo, spec_branch};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sh(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run git");
    assert!(status.success(), "git {args:?}");
}

fn timed<T>(samples: &mut Vec<Duration>, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let value = f();
    samples.push(started.elapsed());
    value
}

fn report(label: &str, samples: &mut [Duration]) -> Duration {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p95 = samples[((samples.len() as f64 * 0.95) as usize).min(samples.len() - 1)];
    println!(
        "  {label:<28} median {:>7.2} ms   p95 {:>7.2} ms   ({} runs)",
        median.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        samples.len()
    );
    median
}

fn main() {
    let rounds = env_usize("GIT_ROUNDS", 20).max(2);
    let files = env_usize("GIT_FILES", 200);
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("repo");
    fs::create_dir_all(root.join("src")).expect("mkdir");
    sh(&root, &["init", "-q", "-b", "main"]);
    for n in 0..files {
        fs::write(
            root.join(format!("src/file{n}.rs")),
            format!("// file {n}\n"),
        )
        .expect("write");
    }
    fs::write(root.join(".gitignore"), ".env\n.taskdaemon/\n").expect("write");
    fs::write(root.join(".worktreeinclude"), ".env\n").expect("write");
    fs::write(root.join(".env"), "KEY=1\n").expect("write");
    sh(&root, &["add", "-A"]);
    sh(&root, &["commit", "-q", "-m", "initial"]);
    let repo = Repo::open(&root).expect("open");

    let (mut create, mut commit, mut rebase, mut ff, mut merge, mut remove, mut poll) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut watcher = MainWatcher::new(&repo, "main").expect("watcher");
    for round in 0..rounds {
        let spec = format!("spec-{round}");
        let path = root.join(".taskdaemon/worktrees/PLAN-1").join(&spec);
        let branch = spec_branch("PLAN-1", &spec);
        timed(&mut create, || repo.ensure_worktree(&path, &branch, "main")).expect("worktree");
        fs::write(path.join(format!("{spec}.txt")), "work\n").expect("write");
        timed(&mut commit, || repo.commit_all(&path, "phase 1"))
            .expect("commit")
            .expect("a change to commit");
        // The target moves meanwhile, as when another spec merged.
        fs::write(root.join(format!("main-{round}.txt")), "main\n").expect("write");
        sh(&root, &["add", "-A"]);
        sh(&root, &["commit", "-q", "-m", "main moves"]);
        timed(&mut poll, || watcher.poll()).expect("poll");
        let rebased = timed(&mut rebase, || repo.rebase(&path, "main")).expect("rebase");
        assert!(
            matches!(rebased, RebaseOutcome::Rebased { .. }),
            "{rebased:?}"
        );
        let (samples, strategy) = if round % 2 == 0 {
            (&mut ff, MergeStrategy::FastForward)
        } else {
            (&mut merge, MergeStrategy::MergeCommit)
        };
        let merged = timed(samples, || repo.merge_into(&branch, "main", strategy)).expect("merge");
        assert!(matches!(merged, MergeOutcome::Merged { .. }), "{merged:?}");
        timed(&mut remove, || repo.remove_worktree(&path, true)).expect("remove");
    }

    println!("git per spec, {rounds} specs on a repository of {files} files (git CLI):");
    let total = report("create worktree", &mut create)
        + report("commit a phase", &mut commit)
        + report("rebase on a moved target", &mut rebase)
        + (report("merge (fast-forward)", &mut ff) + report("merge (merge commit)", &mut merge))
            / 2
        + report("remove worktree + branch", &mut remove);
    report("MainWatcher poll", &mut poll);
    println!(
        "  one spec's whole git lifecycle (one phase): about {:.1} ms",
        total.as_secs_f64() * 1e3
    );
}
