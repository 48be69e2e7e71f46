//! Decay of closed work through the CLI: `task compact --analyze` hands an
//! agent the text to summarise, `--apply FILE` stores its summaries, search
//! finds both the summary and the original, `task restore` brings it back.

mod common;

use std::fs;

use common::{Ws, eventually_some};
use serde_json::{Value, json};

fn search_ids(ws: &Ws, word: &str) -> Vec<String> {
    ws.run(&["search", word, "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|hit| hit["id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn closed_work_is_summarised_searchable_and_restorable() {
    let ws = Ws::new();
    let done = ws
        .run(&[
            "task",
            "add",
            "Write the lexer",
            "--description",
            "hand-rolled lexer for the zephyr format",
        ])
        .ok()
        .last_line();
    ws.run(&["task", "start", &done]).ok();
    ws.run(&["task", "done", &done, "--note", "kept the fallback path"])
        .ok();
    let open = ws.run(&["task", "add", "still open"]).ok().last_line();

    // The analysis offers the closed task (once it ended before "now").
    let analysis = eventually_some("the done task offered", || {
        let analysis = ws
            .run(&["task", "compact", "--older-than", "0s", "--analyze"])
            .ok()
            .json();
        (analysis["tasks"].as_array()?.len() == 1).then_some(analysis)
    });
    let offered = &analysis["tasks"][0];
    assert_eq!(offered["id"], done.as_str());
    assert_eq!(
        offered["description"],
        "hand-rolled lexer for the zephyr format"
    );
    assert_eq!(offered["note"], "kept the fallback path");
    assert!(
        analysis["instructions"]
            .as_str()
            .unwrap()
            .contains("--apply"),
        "{analysis}"
    );
    let later = ws
        .run(&["task", "compact", "--older-than", "30d", "--analyze"])
        .ok()
        .json();
    assert_eq!(later["tasks"], json!([]), "nothing ended 30 days ago");

    // Bad summaries are refused whole, naming the file and what is wrong.
    let file = ws.root().join("summaries.json");
    fs::write(&file, json!([{"id": done, "summary": " "}]).to_string()).unwrap();
    let run = ws.run(&["task", "compact", "--apply", file.to_str().unwrap()]);
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stderr.contains("summaries.json") && run.stderr.contains("entry 1"),
        "{run:?}"
    );
    fs::write(
        &file,
        json!([
            {"id": done, "summary": "lexer done; quasar summary"},
            {"id": open, "summary": "not yet"}
        ])
        .to_string(),
    )
    .unwrap();
    let run = ws.run(&["task", "compact", "--apply", file.to_str().unwrap()]);
    assert!(
        !run.success() && run.stderr.contains("has not ended"),
        "{run:?}"
    );
    let shown = ws.run(&["task", "show", &done, "--json"]).ok().json();
    assert!(shown.get("original").is_none(), "all or nothing: {shown}");

    // The agent's summaries are stored; the original stays findable.
    fs::write(
        &file,
        json!([{"id": done, "summary": "lexer done; quasar summary"}]).to_string(),
    )
    .unwrap();
    let applied = ws
        .run(&["task", "compact", "--apply", file.to_str().unwrap()])
        .ok();
    assert!(applied.stdout.contains(&done), "{applied:?}");
    let shown = ws.run(&["task", "show", &done, "--json"]).ok().json();
    assert_eq!(shown["description"], "lexer done; quasar summary");
    assert_eq!(shown["note"], Value::Null);
    assert_eq!(
        shown["original"]["description"],
        "hand-rolled lexer for the zephyr format"
    );
    assert_eq!(shown["original"]["note"], "kept the fallback path");
    let text = ws.run(&["task", "show", &done]).ok().stdout;
    assert!(
        text.contains("task restore") && text.contains("zephyr"),
        "{text}"
    );
    assert!(search_ids(&ws, "quasar").contains(&done));
    assert!(search_ids(&ws, "zephyr").contains(&done));

    // Restore brings the original back.
    ws.run(&["task", "restore", &done]).ok();
    let shown = ws.run(&["task", "show", &done, "--json"]).ok().json();
    assert_eq!(
        shown["description"],
        "hand-rolled lexer for the zephyr format"
    );
    assert_eq!(shown["note"], "kept the fallback path");
    assert!(shown.get("original").is_none(), "{shown}");
    assert!(!search_ids(&ws, "quasar").contains(&done));
    let run = ws.run(&["task", "restore", &done]);
    assert!(
        !run.success() && run.stderr.contains("never compacted"),
        "{run:?}"
    );
}
