//! The committed fuzz corpus (`fuzz/seeds/`), replayed through the same harness
//! the fuzz targets run: every seed and every crash found so far parses or
//! fails cleanly, never panics; seeds named `ok-*` are accepted, `err-*` refused.

#[path = "../../../fuzz/harness/config_toml.rs"]
mod config_toml;
#[path = "../../../fuzz/harness/seed_config.rs"]
mod seed_config;
#[path = "../../../fuzz/harness/seeds.rs"]
mod seeds;

#[test]
fn the_config_toml_corpus_replays() {
    seeds::replay("config_toml", config_toml::run);
}

#[test]
fn the_seed_config_corpus_replays() {
    seeds::replay("seed_config", seed_config::run);
}
