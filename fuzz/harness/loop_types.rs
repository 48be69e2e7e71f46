//! `taskdaemon.yml` (loop types): variable substitution, parsing, partials
//! and inheritance, as `LoopTypes::load` reads the file.

use taskdaemon_looptypes::LoopTypes;

/// Whether the text is a valid loop-types file.
pub fn run(data: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    let env = |name: &str| (name == "SET").then(|| "value".to_owned());
    LoopTypes::load_text(text, "taskdaemon.yml", None, &env)
        .map(drop)
        .map_err(|e| e.to_string())
}
