//! Loading and resolving a taskdaemon.yml of 200 types (chains up to 10
//! deep, each with inputs, tools and a prompt using partials), the figure
//! the issue sets a 5 ms goal for. Prints figures; asserts nothing.
//!
//!     cargo bench -p taskdaemon-looptypes --bench load

use std::fmt::Write;
use std::time::{Duration, Instant};

use taskdaemon_looptypes::LoopTypes;

const TYPES: usize = 200;
const RUNS: usize = 200;

fn file() -> String {
    let mut text = String::from(
        "version: 1\npartials:\n  rules: |\n    Keep changes small for {{goal}}.\ntypes:\n",
    );
    for i in 0..TYPES {
        // Every tenth type starts a new chain from ralph.
        let parent = if i % 10 == 0 {
            "ralph".to_owned()
        } else {
            format!("t{}", i - 1)
        };
        let _ = write!(
            text,
            "  t{i}:\n    extends: {parent}\n    description: type {i}\n    model: model-{m}\n    max_iterations: {n}\n    timeout: {n}m\n    tools:\n      run_command:\n        commands: [cargo, git, t{i}]\n    network: {net}\n    validation: test -f {{{{goal}}}}-{i}\n    inputs:\n      goal: {{type: string, default: g{i}}}\n      level_{i}: {{type: integer, default: {i}, min: 0}}\n    outputs:\n      out_{i}: {{kind: file, path: \"out/{{{{goal}}}}-{i}.md\"}}\n    prompt: |\n      Type {i}, iteration {{{{iteration}}}} of {{{{max_iterations}}}}: {{{{goal}}}}\n      {{{{#if (eq level_{i} 3)}}}}three{{{{/if}}}} {{{{json level_{i}}}}}\n      {{{{> rules}}}}\n      {{{{> progress}}}}\n",
            m = i % 7,
            n = 1 + i % 20,
            net = if i % 2 == 0 { "none" } else { "open" },
        );
    }
    text
}

fn main() {
    let text = file();
    let env = |_: &str| None;
    let loaded =
        LoopTypes::load_text(&text, "taskdaemon.yml", None, &env).expect("the bench file loads");
    assert_eq!(loaded.types.len(), TYPES + 4);
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let loaded = LoopTypes::load_text(&text, "taskdaemon.yml", None, &env);
            let elapsed = start.elapsed();
            std::hint::black_box(loaded.is_ok());
            elapsed
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "load + resolve + check {TYPES} types ({} KiB of YAML): median {:.2} ms, p95 {:.2} ms, max {:.2} ms over {RUNS} runs (goal < 5 ms)",
        text.len() / 1024,
        ms(times[RUNS / 2]),
        ms(times[RUNS * 95 / 100]),
        ms(times[RUNS - 1]),
    );
}
