//! The task monitor's `config.json` (`queues import-config`): parsed, then
//! applied to the default config.toml of a workspace at the seed's own
//! `project_workspace`, as the import does.

use std::path::Path;

use taskdaemon_workspace::DEFAULT_CONFIG;
use taskdaemon_workspace::seed_config::SeedConfig;

/// Whether the text imports onto the default config.
pub fn run(data: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    let seed = SeedConfig::parse(text)?;
    seed.apply(DEFAULT_CONFIG, Path::new("/home/admin/workspaces/datachat"))
        .map(drop)
}
