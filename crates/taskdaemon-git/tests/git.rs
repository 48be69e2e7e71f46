//! The git crate against real repositories made in temp dirs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use taskdaemon_git::{
    GitError, MainWatcher, MergeOutcome, MergeStrategy, RebaseOutcome, Repo, spec_branch,
};

/// Runs git as a person would, with their own identity.
fn sh(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, text).unwrap();
}

fn commit_file(dir: &Path, file: &str, text: &str, message: &str) -> String {
    write(&dir.join(file), text);
    sh(dir, &["add", "--", file]);
    sh(dir, &["commit", "-q", "-m", message]);
    sh(dir, &["rev-parse", "HEAD"])
}

/// A repository on `main` with one commit, `.taskdaemon/` present and ignored
/// by nothing (as a fresh workspace is).
fn repo() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap().join("project");
    fs::create_dir_all(&root).unwrap();
    sh(&root, &["init", "-q", "-b", "main"]);
    commit_file(&root, "README.md", "hello\n", "initial");
    fs::create_dir_all(root.join(".taskdaemon")).unwrap();
    write(&root.join(".taskdaemon/state.db"), "x");
    (tmp, root)
}

fn spec_path(root: &Path, plan: &str, spec: &str) -> PathBuf {
    root.join(".taskdaemon/worktrees").join(plan).join(spec)
}

#[test]
fn a_worktree_is_created_on_its_branch_and_reattached_after_a_restart() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let path = spec_path(&root, "PLAN-1", "auth");
    let branch = spec_branch("PLAN-1", "auth");
    assert_eq!(branch, "td/PLAN-1/auth");

    let made = repo.ensure_worktree(&path, &branch, "main").unwrap();
    assert!(made.created);
    assert_eq!(made.head, repo.head_of("main").unwrap());
    assert!(path.join("README.md").is_file());
    assert_eq!(sh(&path, &["symbolic-ref", "--short", "HEAD"]), branch);
    // The main checkout does not see the worktree as something to add.
    let status = sh(&root, &["status", "--porcelain", "--untracked-files=all"]);
    assert!(!status.contains("worktrees"), "{status}");
    assert!(status.contains(".taskdaemon/state.db"), "{status}");

    // Work done before the "crash" survives the re-attach.
    write(&path.join("src/auth.rs"), "fn login() {}\n");
    let commit = repo.commit_all(&path, "phase 1").unwrap().unwrap();

    let reopened = Repo::open(&root).unwrap();
    let again = reopened.ensure_worktree(&path, &branch, "main").unwrap();
    assert!(!again.created);
    assert_eq!(again.head, commit);

    // The directory gone but the branch kept: the worktree comes back on the branch.
    fs::remove_dir_all(&path).unwrap();
    let restored = reopened.ensure_worktree(&path, &branch, "main").unwrap();
    assert!(restored.created);
    assert_eq!(restored.head, commit);
    assert!(path.join("src/auth.rs").is_file());

    // Another branch may not take over the path.
    let err = reopened
        .ensure_worktree(&path, "td/PLAN-1/other", "main")
        .unwrap_err();
    assert!(
        matches!(err, GitError::WorktreeOnOtherBranch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("td/PLAN-1/auth"), "{err}");
}

#[test]
fn worktreeinclude_copies_ignored_matches_only() {
    let (_tmp, root) = repo();
    write(
        &root.join(".gitignore"),
        ".env\n*.log\nsecrets/\nlink.env\n",
    );
    write(
        &root.join(".worktreeinclude"),
        "# local settings\n.env\nsecrets/\nsettings.toml\nlink.env\n",
    );
    commit_file(&root, "settings.toml", "tracked = 1\n", "tracked settings");
    sh(&root, &["add", ".gitignore", ".worktreeinclude"]);
    sh(&root, &["commit", "-q", "-m", "ignore rules"]);
    write(&root.join(".env"), "TOKEN=abc\n");
    fs::set_permissions(root.join(".env"), fs::Permissions::from_mode(0o600)).unwrap();
    write(&root.join("secrets/run.sh"), "#!/bin/sh\n");
    fs::set_permissions(
        root.join("secrets/run.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    write(&root.join("debug.log"), "ignored but not listed\n");
    // A change to a tracked file the patterns name is not copied.
    write(&root.join("settings.toml"), "tracked = 2\n");
    // An ignored, listed symlink leading out of the repository is not followed.
    let outside = root.parent().unwrap().join("outside.txt");
    write(&outside, "private\n");
    std::os::unix::fs::symlink(&outside, root.join("link.env")).unwrap();

    let repo = Repo::open(&root).unwrap();
    let path = spec_path(&root, "PLAN-2", "ui");
    let made = repo
        .ensure_worktree(&path, &spec_branch("PLAN-2", "ui"), "main")
        .unwrap();
    let mut included = made.included.clone();
    included.sort();
    assert_eq!(
        included,
        [PathBuf::from(".env"), PathBuf::from("secrets/run.sh")]
    );
    assert_eq!(
        fs::read_to_string(path.join(".env")).unwrap(),
        "TOKEN=abc\n"
    );
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path.join(".env")), 0o600);
    assert_eq!(mode(&path.join("secrets/run.sh")), 0o755);
    assert!(!path.join("debug.log").exists());
    assert!(fs::symlink_metadata(path.join("link.env")).is_err());
    assert_eq!(
        fs::read_to_string(path.join("settings.toml")).unwrap(),
        "tracked = 1\n"
    );
    // The copies are ignored, so they never reach a commit.
    assert_eq!(repo.commit_all(&path, "nothing").unwrap(), None);
}

#[test]
fn commit_all_uses_the_daemon_identity_and_is_a_no_op_when_clean() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let path = spec_path(&root, "PLAN-1", "a");
    repo.ensure_worktree(&path, "td/PLAN-1/a", "main").unwrap();
    assert_eq!(repo.commit_all(&path, "empty").unwrap(), None);
    write(&path.join("a.txt"), "a\n");
    let oid = repo.commit_all(&path, "add a").unwrap().unwrap();
    assert_eq!(sh(&path, &["rev-parse", "HEAD"]), oid.as_str());
    assert_eq!(
        sh(&path, &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%s"]),
        "taskdaemon <taskdaemon@localhost>|taskdaemon <taskdaemon@localhost>|add a"
    );
    let custom = repo.clone().with_identity(taskdaemon_git::Identity {
        name: "Bot".into(),
        email: "bot@example.com".into(),
    });
    fs::remove_file(path.join("a.txt")).unwrap();
    custom.commit_all(&path, "remove a").unwrap().unwrap();
    assert_eq!(
        sh(&path, &["log", "-1", "--format=%an <%ae>"]),
        "Bot <bot@example.com>"
    );
}

#[test]
fn rebase_moves_a_spec_onto_the_new_target() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let path = spec_path(&root, "PLAN-1", "a");
    repo.ensure_worktree(&path, "td/PLAN-1/a", "main").unwrap();
    write(&path.join("spec.txt"), "spec\n");
    let before = repo.commit_all(&path, "spec work").unwrap().unwrap();
    assert_eq!(repo.rebase(&path, "main").unwrap(), RebaseOutcome::UpToDate);

    let main_head = commit_file(&root, "main.txt", "main\n", "main moves");
    let outcome = repo.rebase(&path, "main").unwrap();
    let RebaseOutcome::Rebased { from, to } = outcome else {
        panic!("expected a rebase, got {outcome:?}");
    };
    assert_eq!(from, before);
    assert_ne!(to, before);
    assert_eq!(sh(&path, &["rev-parse", "HEAD~1"]), main_head);
    assert!(path.join("main.txt").is_file() && path.join("spec.txt").is_file());
    assert_eq!(repo.rebase(&path, "main").unwrap(), RebaseOutcome::UpToDate);
}

#[test]
fn a_conflicting_rebase_names_the_file_and_can_be_resolved_or_aborted() {
    let (_tmp, root) = repo();
    commit_file(&root, "shared.txt", "base\n", "shared file");
    let repo = Repo::open(&root).unwrap();
    let path = spec_path(&root, "PLAN-1", "a");
    repo.ensure_worktree(&path, "td/PLAN-1/a", "main").unwrap();
    write(&path.join("shared.txt"), "spec version\n");
    write(&path.join("other.txt"), "no conflict\n");
    let spec_head = repo
        .commit_all(&path, "spec edits shared")
        .unwrap()
        .unwrap();
    commit_file(&root, "shared.txt", "main version\n", "main edits shared");

    let outcome = repo.rebase(&path, "main").unwrap();
    assert_eq!(
        outcome,
        RebaseOutcome::Conflict {
            files: vec!["shared.txt".to_owned()]
        }
    );
    assert!(repo.rebase_in_progress(&path).unwrap());

    // Abort puts the branch back as it was.
    repo.rebase_abort(&path).unwrap();
    assert!(!repo.rebase_in_progress(&path).unwrap());
    assert_eq!(sh(&path, &["rev-parse", "HEAD"]), spec_head.as_str());

    // Again, and this time a resolver settles it.
    assert!(matches!(
        repo.rebase(&path, "main").unwrap(),
        RebaseOutcome::Conflict { .. }
    ));
    // After a restart the paused rebase is found as it was, and nothing
    // commits over it.
    let reopened = Repo::open(&root).unwrap();
    assert_eq!(
        reopened.rebase(&path, "main").unwrap(),
        RebaseOutcome::Conflict {
            files: vec!["shared.txt".to_owned()]
        }
    );
    let err = reopened.commit_all(&path, "sneaky").unwrap_err();
    assert!(matches!(err, GitError::RebaseInProgress(_)), "{err}");
    // git shows the paused worktree as detached; it is still the spec's.
    let again = reopened
        .ensure_worktree(&path, "td/PLAN-1/a", "main")
        .unwrap();
    assert!(!again.created);
    assert!(reopened.rebase_in_progress(&path).unwrap());
    write(&path.join("shared.txt"), "main and spec\n");
    let outcome = repo.rebase_continue(&path).unwrap();
    assert!(
        matches!(&outcome, RebaseOutcome::Rebased { from, .. } if *from == spec_head),
        "{outcome:?}"
    );
    assert!(!repo.rebase_in_progress(&path).unwrap());
    assert_eq!(
        fs::read_to_string(path.join("shared.txt")).unwrap(),
        "main and spec\n"
    );
    assert_eq!(repo.rebase(&path, "main").unwrap(), RebaseOutcome::UpToDate);
    let err = repo.rebase_continue(&path).unwrap_err();
    assert!(matches!(err, GitError::NoRebaseInProgress(_)), "{err}");
}

/// A spec worktree with one commit adding `file`, rebased on main.
fn spec_with_commit(repo: &Repo, root: &Path, spec: &str, file: &str) -> (PathBuf, String) {
    let path = spec_path(root, "PLAN-1", spec);
    let branch = spec_branch("PLAN-1", spec);
    repo.ensure_worktree(&path, &branch, "main").unwrap();
    write(&path.join(file), "spec work\n");
    repo.commit_all(&path, &format!("{spec} work"))
        .unwrap()
        .unwrap();
    (path, branch)
}

#[test]
fn fast_forward_into_the_checked_out_target_updates_its_checkout() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let (path, branch) = spec_with_commit(&repo, &root, "a", "a.txt");
    let old = repo.head_of("main").unwrap();
    let tip = repo.head_of(&branch).unwrap();
    let outcome = repo
        .merge_into(&branch, "main", MergeStrategy::FastForward)
        .unwrap();
    assert_eq!(
        outcome,
        MergeOutcome::Merged {
            from: old,
            to: tip.clone()
        }
    );
    assert_eq!(repo.head_of("main").unwrap(), tip);
    assert_eq!(
        fs::read_to_string(root.join("a.txt")).unwrap(),
        "spec work\n"
    );
    assert_eq!(
        sh(&root, &["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
    assert_eq!(
        repo.merge_into(&branch, "main", MergeStrategy::FastForward)
            .unwrap(),
        MergeOutcome::AlreadyMerged { head: tip }
    );
    repo.remove_worktree(&path, true).unwrap();
    assert!(!path.exists());
    assert!(!repo.branch_exists(&branch).unwrap());
    assert!(
        !root.join(".taskdaemon/worktrees/PLAN-1").exists(),
        "the plan's folder goes with its last worktree"
    );
}

#[test]
fn a_merge_commit_into_the_checked_out_target_updates_its_checkout() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let (_path, branch) = spec_with_commit(&repo, &root, "a", "a.txt");
    let old = repo.head_of("main").unwrap();
    let tip = repo.head_of(&branch).unwrap();
    let outcome = repo
        .merge_into(&branch, "main", MergeStrategy::MergeCommit)
        .unwrap();
    let MergeOutcome::Merged { from, to } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(from, old);
    assert_eq!(
        sh(&root, &["log", "-1", "--format=%P|%s"]),
        format!("{old} {tip}|Merge branch 'td/PLAN-1/a' into main")
    );
    assert_eq!(sh(&root, &["rev-parse", "HEAD"]), to.as_str());
    assert!(root.join("a.txt").is_file());
    assert_eq!(
        sh(&root, &["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
}

#[test]
fn merging_into_a_target_not_checked_out_moves_only_the_ref() {
    let (_tmp, root) = repo();
    sh(&root, &["branch", "release"]);
    let repo = Repo::open(&root).unwrap();
    let path = spec_path(&root, "PLAN-1", "a");
    repo.ensure_worktree(&path, "td/PLAN-1/a", "release")
        .unwrap();
    write(&path.join("a.txt"), "a\n");
    let tip = repo.commit_all(&path, "a").unwrap().unwrap();
    let main_before = repo.head_of("main").unwrap();

    let outcome = repo
        .merge_into("td/PLAN-1/a", "release", MergeStrategy::FastForward)
        .unwrap();
    assert!(matches!(outcome, MergeOutcome::Merged { ref to, .. } if *to == tip));
    assert_eq!(repo.head_of("release").unwrap(), tip);
    assert_eq!(repo.head_of("main").unwrap(), main_before);
    assert!(!root.join("a.txt").exists(), "main's checkout is untouched");

    // A merge commit, too, with no checkout of the target anywhere.
    let path_b = spec_path(&root, "PLAN-1", "b");
    repo.ensure_worktree(&path_b, "td/PLAN-1/b", "release")
        .unwrap();
    write(&path_b.join("b.txt"), "b\n");
    let tip_b = repo.commit_all(&path_b, "b").unwrap().unwrap();
    let outcome = repo
        .merge_into("td/PLAN-1/b", "release", MergeStrategy::MergeCommit)
        .unwrap();
    let MergeOutcome::Merged { to, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        sh(&root, &["log", "-1", "--format=%P", "release"]),
        format!("{tip} {tip_b}")
    );
    assert_eq!(sh(&root, &["rev-parse", "release"]), to.as_str());
    assert_eq!(
        sh(&root, &["show", "release:b.txt"]),
        "b",
        "the merge holds the branch's tree"
    );
}

#[test]
fn a_dirty_checked_out_target_is_refused_and_nothing_changes() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let (_path, branch) = spec_with_commit(&repo, &root, "a", "a.txt");
    let before = repo.head_of("main").unwrap();
    write(&root.join("README.md"), "edited by hand\n");
    for strategy in [MergeStrategy::FastForward, MergeStrategy::MergeCommit] {
        let err = repo.merge_into(&branch, "main", strategy).unwrap_err();
        assert!(matches!(err, GitError::TargetDirty { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("README.md") && message.contains("'main'"),
            "{message}"
        );
        assert_eq!(repo.head_of("main").unwrap(), before);
        assert_eq!(
            fs::read_to_string(root.join("README.md")).unwrap(),
            "edited by hand\n"
        );
        assert!(!root.join("a.txt").exists());
    }
}

#[test]
fn an_untracked_file_in_the_way_stops_the_merge_with_git_s_reason() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let (_path, branch) = spec_with_commit(&repo, &root, "a", "a.txt");
    let before = repo.head_of("main").unwrap();
    write(&root.join("a.txt"), "the user's own\n");
    let err = repo
        .merge_into(&branch, "main", MergeStrategy::FastForward)
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, GitError::Command { .. }), "{message}");
    assert!(
        message.contains("a.txt") && message.contains("git merge"),
        "{message}"
    );
    assert_eq!(repo.head_of("main").unwrap(), before);
    assert_eq!(
        fs::read_to_string(root.join("a.txt")).unwrap(),
        "the user's own\n"
    );
}

#[test]
fn a_target_that_moved_since_the_rebase_asks_for_a_retry() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let (path, branch) = spec_with_commit(&repo, &root, "a", "a.txt");
    let moved = commit_file(&root, "main.txt", "main\n", "main moves");
    let spec_head = repo.head_of(&branch).unwrap();
    for strategy in [MergeStrategy::FastForward, MergeStrategy::MergeCommit] {
        let outcome = repo.merge_into(&branch, "main", strategy).unwrap();
        assert!(
            matches!(&outcome, MergeOutcome::Retry { target } if target.as_str() == moved),
            "{outcome:?}"
        );
        assert_eq!(repo.head_of("main").unwrap().as_str(), moved);
        assert_eq!(repo.head_of(&branch).unwrap(), spec_head);
    }
    // After the rebase the retry goes through.
    assert!(matches!(
        repo.rebase(&path, "main").unwrap(),
        RebaseOutcome::Rebased { .. }
    ));
    assert!(matches!(
        repo.merge_into(&branch, "main", MergeStrategy::FastForward)
            .unwrap(),
        MergeOutcome::Merged { .. }
    ));
    assert!(root.join("a.txt").is_file() && root.join("main.txt").is_file());
}

#[test]
fn orphaned_worktrees_are_cleaned_up_and_wanted_ones_kept() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let keep_path = spec_path(&root, "PLAN-1", "keep");
    let gone_path = spec_path(&root, "PLAN-1", "gone");
    let old_plan = spec_path(&root, "PLAN-2", "x");
    for (path, spec) in [(&keep_path, "keep"), (&gone_path, "gone")] {
        repo.ensure_worktree(path, &spec_branch("PLAN-1", spec), "main")
            .unwrap();
    }
    repo.ensure_worktree(&old_plan, "td/PLAN-2/x", "main")
        .unwrap();
    // A folder left by a crash before git registered it.
    let stray = spec_path(&root, "PLAN-3", "half");
    write(&stray.join("partial"), "x");
    // A worktree whose folder someone deleted: only git's record is left.
    let deleted = spec_path(&root, "PLAN-4", "deleted");
    repo.ensure_worktree(&deleted, "td/PLAN-4/deleted", "main")
        .unwrap();
    fs::remove_dir_all(root.join(".taskdaemon/worktrees/PLAN-4")).unwrap();

    let worktrees_root = root.join(".taskdaemon/worktrees");
    let mut removed = repo
        .cleanup_orphans(&worktrees_root, &|plan, spec| {
            plan == "PLAN-1" && spec == "keep"
        })
        .unwrap();
    removed.sort();
    let mut expected = vec![gone_path.clone(), old_plan.clone(), stray.clone()];
    expected.sort();
    assert_eq!(removed, expected);
    assert!(keep_path.join("README.md").is_file());
    assert!(!gone_path.exists() && !old_plan.exists() && !stray.exists());
    assert!(!root.join(".taskdaemon/worktrees/PLAN-2").exists());
    let listed: Vec<PathBuf> = repo
        .worktrees()
        .unwrap()
        .into_iter()
        .map(|w| w.path)
        .collect();
    assert_eq!(listed, [root.clone(), keep_path.clone()]);
    // Branches stay: a failed spec's work may still be wanted.
    assert!(repo.branch_exists("td/PLAN-1/gone").unwrap());
    // Nothing left to do the second time.
    assert!(
        repo.cleanup_orphans(&worktrees_root, &|_, spec| spec == "keep")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_main_watcher_sees_new_commits_loose_and_packed() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let mut watcher = MainWatcher::new(&repo, "main").unwrap();
    let first = watcher.head().clone();
    assert_eq!(watcher.poll().unwrap(), None);

    let second = commit_file(&root, "a.txt", "a\n", "a");
    let moved = watcher.poll().unwrap().unwrap();
    assert_eq!(moved.from, first);
    assert_eq!(moved.to.as_str(), second);
    assert_eq!(watcher.poll().unwrap(), None);

    // Refs packed away (as `git gc` does) are read from packed-refs.
    sh(&root, &["pack-refs", "--all"]);
    assert!(!root.join(".git/refs/heads/main").exists());
    assert_eq!(watcher.poll().unwrap(), None);
    sh(&root, &["update-ref", "refs/heads/main", first.as_str()]);
    sh(&root, &["pack-refs", "--all"]);
    let moved = watcher.poll().unwrap().unwrap();
    assert_eq!((moved.from.as_str(), &moved.to), (second.as_str(), &first));
}

#[test]
fn the_main_watcher_reports_a_move_when_poked() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let watcher = MainWatcher::new(&repo, "main").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let poke = Arc::new(tokio::sync::Notify::new());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let run_poke = poke.clone();
        // An hour between polls: only the poke can make it look.
        let task = tokio::spawn(async move {
            watcher
                .run(Duration::from_secs(3600), &run_poke, move |moved| {
                    let _ = tx.send(moved);
                })
                .await;
        });
        let new_head = commit_file(&root, "a.txt", "a\n", "a");
        let deadline = Instant::now() + Duration::from_secs(60);
        let moved = loop {
            poke.notify_one();
            if let Ok(Some(moved)) =
                tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
            {
                break moved;
            }
            assert!(
                Instant::now() < deadline,
                "the watcher never reported the move"
            );
        };
        assert_eq!(moved.to.as_str(), new_head);
        task.abort();
    });
}

#[test]
fn check_ready_names_each_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Repo::open(tmp.path()).unwrap_err();
    assert!(matches!(err, GitError::NotARepository(_)), "{err}");
    assert!(
        err.to_string().starts_with("not a git repository: "),
        "{err}"
    );

    let (_tmp, root) = repo();
    let repo = Repo::open(&root.join(".taskdaemon")).unwrap();
    assert_eq!(repo.root(), root, "opened from a subfolder");
    // `.taskdaemon/` (untracked here) does not make the tree dirty.
    repo.check_ready("main").unwrap();
    assert_eq!(repo.current_branch().unwrap(), "main");

    let err = repo.check_ready("trunk").unwrap_err();
    assert!(matches!(err, GitError::NoSuchBranch { .. }), "{err}");
    assert!(
        err.to_string().contains("branch 'trunk' does not exist"),
        "{err}"
    );
    let err = repo.check_ready("-x").unwrap_err();
    assert!(matches!(err, GitError::InvalidBranch { .. }), "{err}");

    write(&root.join("README.md"), "changed\n");
    let err = repo.check_ready("main").unwrap_err();
    assert!(matches!(err, GitError::Dirty { .. }), "{err}");
    assert!(err.to_string().contains("README.md"), "{err}");
    sh(&root, &["checkout", "--", "README.md"]);
    write(&root.join("notes.txt"), "new, untracked\n");
    let err = repo.check_ready("main").unwrap_err();
    assert!(err.to_string().contains("notes.txt"), "{err}");
}

#[test]
fn failing_git_commands_name_the_repository_command_and_stderr() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let path = spec_path(&root, "PLAN-1", "a");
    let err = repo
        .ensure_worktree(&path, "td/PLAN-1/a", "no-such-base")
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, GitError::Command { .. }), "{message}");
    assert!(message.contains(&root.display().to_string()), "{message}");
    assert!(message.contains("git worktree add"), "{message}");
    assert!(message.contains("no-such-base"), "{message}");
    assert!(!path.exists(), "nothing half-made: {message}");
}

#[test]
fn two_specs_merging_at_once_give_one_merge_and_one_retry() {
    let (_tmp, root) = repo();
    let repo = Repo::open(&root).unwrap();
    let (_a, branch_a) = spec_with_commit(&repo, &root, "a", "a.txt");
    let (_b, branch_b) = spec_with_commit(&repo, &root, "b", "b.txt");
    let outcomes: Vec<MergeOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = [&branch_a, &branch_b]
            .map(|branch| {
                let repo = repo.clone();
                scope.spawn(move || {
                    repo.merge_into(branch, "main", MergeStrategy::FastForward)
                        .unwrap()
                })
            })
            .into_iter()
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let merged = outcomes
        .iter()
        .filter(|o| matches!(o, MergeOutcome::Merged { .. }))
        .count();
    let retried = outcomes
        .iter()
        .filter(|o| matches!(o, MergeOutcome::Retry { .. }))
        .count();
    assert_eq!((merged, retried), (1, 1), "{outcomes:?}");
    assert_eq!(
        sh(&root, &["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
}
