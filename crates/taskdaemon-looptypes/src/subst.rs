//! `${VAR}` and `${VAR:-default}` substitution, applied to the file's text
//! before it is parsed, line by line so an error names the line. `$${` is a
//! literal `${`. Full-line comments are left alone.

use crate::error::ConfigError;

/// Replaces every `${...}` in `text`; `env` answers a variable's value.
pub fn substitute(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') || !line.contains('$') {
            out.push_str(line);
            continue;
        }
        substitute_line(line, &mut out, env)
            .map_err(|(column, message)| ConfigError::file(file, message).at(index + 1, column))?;
    }
    Ok(out)
}

/// One line; the error is (1-based column, message).
fn substitute_line(
    line: &str,
    out: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (usize, String)> {
    let mut rest = line;
    let mut offset = 0;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            offset += at + 3;
            continue;
        }
        if !tail.starts_with("${") {
            out.push('$');
            rest = &tail[1..];
            offset += at + 1;
            continue;
        }
        let column = line[..offset + at].chars().count() + 1;
        let Some(close) = tail.find('}') else {
            return Err((
                column,
                "unterminated `${`: close it with `}` (write `$${` for a literal `${`)".into(),
            ));
        };
        let body = &tail[2..close];
        let (name, default) = match body.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (body, None),
        };
        if !is_variable_name(name) {
            return Err((
                column,
                format!("`${{{body}}}`: `{name}` is not a variable name (letters, digits, `_`)"),
            ));
        }
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err((
                    column,
                    format!(
                        "environment variable {name} is not set and `${{{name}}}` has no default (write `${{{name}:-default}}`)"
                    ),
                ));
            }
        }
        rest = &tail[close + 1..];
        offset += at + close + 1;
    }
    out.push_str(rest);
    Ok(())
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "MODEL" => Some("opus".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_values_defaults_and_escapes() {
        let text = "model: ${MODEL}\nx: ${NOPE:-dflt} ${EMPTY:-e}\n# ${IGNORED}\nlit: $${X} $5\n";
        assert_eq!(
            substitute(text, "f.yml", &env).unwrap(),
            "model: opus\nx: dflt e\n# ${IGNORED}\nlit: ${X} $5\n"
        );
    }

    #[test]
    fn missing_variable_names_line_and_column() {
        let err = substitute("a: 1\nb: x ${NOPE}\n", "f.yml", &env).unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(6)));
        assert!(err.message.contains("NOPE"), "{err}");
        let err = substitute("a: ${OPEN\n", "f.yml", &env).unwrap_err();
        assert!(err.message.contains("unterminated"), "{err}");
        let err = substitute("a: ${1X}\n", "f.yml", &env).unwrap_err();
        assert!(err.message.contains("not a variable name"), "{err}");
    }
}
