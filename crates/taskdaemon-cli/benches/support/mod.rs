//! Command-line plumbing shared by the `harness = false` bench helpers.

#![allow(dead_code)]

use std::collections::BTreeMap;

pub type Result<T> = std::result::Result<T, String>;

/// `--name value` options before an optional `--`; returns them and what follows `--`.
pub fn options(args: &[String]) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut map = BTreeMap::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            return Ok((map, iter.cloned().collect()));
        }
        let name = arg
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument '{arg}'"))?;
        let value = iter
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        map.insert(name.to_owned(), value.clone());
    }
    Ok((map, Vec::new()))
}

pub fn required<'a>(opts: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str> {
    opts.get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("--{name} is required"))
}

pub fn number(opts: &BTreeMap<String, String>, name: &str, default: u64) -> Result<u64> {
    opts.get(name).map_or(Ok(default), |v| {
        v.parse().map_err(|e| format!("--{name} {v}: {e}"))
    })
}
